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

export function redact(text: string): string {
  let out = text.replace(URL_CREDENTIALS, "$1$2:***@");
  // Longest first, so a secret that contains another is masked whole.
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    out = out.split(secret).join("***");
  }
  return out;
}
