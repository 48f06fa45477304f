import { registerSecret } from "../../redact.js";
import { configError } from "../connection-fields.js";

/**
 * Where an Elasticsearch (or OpenSearch) cluster is and who capsule is there. Credentials are only ever read from
 * the environment, never from argv: basic auth from ES_USER/ES_PASSWORD (what a compiled CronJob sets,
 * plan/run-contract.ts) or cnvrg's CNVRG_ES_USER/CNVRG_ES_PASS, or an API key from ES_API_KEY.
 */
export interface EsConnection {
  /** Base URL without credentials, e.g. https://es:9200 (a path prefix is kept for proxies). */
  readonly url: URL;
  readonly auth?: { readonly kind: "basic"; readonly user: string; readonly password: string } | EsApiKey;
  readonly tls: {
    /** PEM bundle to verify the server with, instead of the system's CAs. */
    readonly ca?: string;
    /** Skip certificate verification (warned about by the command). */
    readonly insecure: boolean;
  };
}

interface EsApiKey {
  readonly kind: "apiKey";
  /** The encoded key (base64 of `id:api_key`), as Elasticsearch hands it out. */
  readonly key: string;
}

export interface EsConnectionFlags {
  readonly url?: string | undefined;
  readonly insecureSkipTlsVerify?: boolean | undefined;
}

export const DEFAULT_ES_URL = "http://localhost:9200";

/**
 * The given fields first, then ES_URL (what `capsule run` is given), then cnvrg's ELASTICSEARCH_URL. Throws a
 * `FieldError` for a bad value (the CLI shows a field as its flag). `ca` is the PEM text of the CA file, read by the
 * caller.
 */
export function esConnectionFrom(
  flags: EsConnectionFlags,
  env: NodeJS.ProcessEnv,
  ca?: string,
): EsConnection {
  const text = flags.url ?? env["ES_URL"] ?? env["ELASTICSEARCH_URL"] ?? DEFAULT_ES_URL;
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`);
  } catch {
    throw configError("url", `{url} must be an http(s) URL (got ${JSON.stringify(text)})`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw configError("url", `{url} must be an http(s) URL (got ${JSON.stringify(url.protocol)})`);
  }
  if (url.username || url.password) {
    // A credential in argv is visible to every process on the host; refuse it rather than use it.
    registerSecret(decodeURIComponent(url.password));
    throw configError(
      "url",
      "the URL must not carry credentials: set ES_USER and ES_PASSWORD (or ES_API_KEY) in the environment",
    );
  }
  if (url.search || url.hash)
    throw configError("url", `{url} must not have a query or fragment (got ${url.origin}…)`);
  if (!url.pathname.endsWith("/")) url.pathname += "/";

  const apiKey = env["ES_API_KEY"];
  const user = env["ES_USER"] ?? env["CNVRG_ES_USER"];
  const password = env["ES_PASSWORD"] ?? env["CNVRG_ES_PASS"];
  registerSecret(apiKey);
  registerSecret(password);
  let auth: EsConnection["auth"];
  if (apiKey) auth = { kind: "apiKey", key: apiKey };
  else if (user) {
    if (password === undefined) {
      throw configError(
        "ES_PASSWORD",
        `ES_USER is ${user} but no password is set (ES_PASSWORD or CNVRG_ES_PASS)`,
      );
    }
    auth = { kind: "basic", user, password };
    registerSecret(Buffer.from(`${user}:${password}`).toString("base64"));
  }
  return {
    url,
    ...(auth ? { auth } : {}),
    tls: { ...(ca ? { ca } : {}), insecure: flags.insecureSkipTlsVerify === true },
  };
}

/** The cluster's address for messages: no credentials, no trailing slash. */
export function describeConnection(conn: EsConnection): string {
  return conn.url.href.replace(/\/$/, "");
}

/** The cluster's TCP port: the URL's, else its scheme's. */
export function portOf(conn: EsConnection): number {
  return Number(conn.url.port || (conn.url.protocol === "https:" ? 443 : 80));
}
