/**
 * Secret redaction. Every secret value capsule reads (passwords, S3 secret keys, tokens) is registered here the moment
 * it is read; every string that leaves the process through the logger, an error message or a statefile passes through
 * `redact()`. Credentials embedded in URLs are masked even when they were never registered.
 */
const secrets = new Set<string>();

/** Values shorter than this are not registered: masking "a" everywhere would destroy messages, not protect secrets. */
const MIN_SECRET_LENGTH = 4;

export function registerSecret(value: string | undefined): void {
  if (value && value.length >= MIN_SECRET_LENGTH) secrets.add(value);
}

const URL_CREDENTIALS = /([a-z][a-z0-9+.-]*:\/\/)([^/@\s:]*):([^/@\s]*)@/gi;
/** A URL's scheme and `//` at the start of a value (`postgresql://`, `redis://`). */
const URL_SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

export function redact(text: string): string {
  let out = text.replace(URL_CREDENTIALS, "$1$2:***@");
  // Longest first, so a secret that contains another is masked whole.
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    out = out.split(secret).join("***");
  }
  return out;
}

/**
 * A statefile's `source` as it may be stored: a host given as `user:password@host` or as a URL keeps only the
 * host. Commands refuse such hosts before they get here; this is the last line before the bucket, which every
 * reader of the bucket can see.
 */
export function redactSource<T extends Record<string, unknown>>(source: T): T {
  const out: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(source)) {
    // Only addresses lose what precedes an "@": a database may legally be called "app@2024".
    const address = field === "host" || field === "url";
    out[field] = typeof value === "string" ? redact(address ? stripUserinfo(value) : value) : value;
  }
  return out as T;
}

function stripUserinfo(value: string): string {
  const at = value.lastIndexOf("@");
  if (at < 0) return value;
  const scheme = URL_SCHEME.exec(value)?.[0] ?? "";
  return `${scheme}${value.slice(at + 1)}`;
}

/**
 * Refuses a host that carries credentials (`user:password@host`, `postgresql://user:pw@host/db`) or is a URL: a
 * credential in argv is visible to every process on the host, and a host is written to the statefile. The
 * password part is registered first, so nothing capsule prints afterwards can show it. Returns why, or undefined.
 */
export function hostProblem(host: string): string | undefined {
  const url = URL_SCHEME.test(host);
  const at = host.lastIndexOf("@");
  if (at >= 0) {
    const userinfo = host.slice(0, at).replace(URL_SCHEME, "");
    const colon = userinfo.indexOf(":");
    if (colon >= 0) registerSecret(userinfo.slice(colon + 1));
    return "must be a host name or address without credentials";
  }
  if (url) return "must be a host name or address, not a URL";
  return undefined;
}
