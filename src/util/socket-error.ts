/**
 * What a failed socket means, told from Node's error code: the one place that decides which codes say "could not
 * reach it", "the connection dropped" and "the certificate does not verify". Each adapter says where (which server)
 * and what to do about it around the phrase, so the same failure reads the same against every server.
 */
export type SocketFailureKind = "unreachable" | "reset" | "untrusted-certificate";

export interface SocketFailure {
  readonly kind: SocketFailureKind;
  /** Node's code, e.g. `ECONNREFUSED`. */
  readonly code: string;
  /** One line without the server's name, e.g. `cannot connect (ECONNREFUSED)`. */
  readonly phrase: string;
}

/** Nothing answered: refused, no such host, no route, or no answer in time. */
const UNREACHABLE = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "EAI_AGAIN",
]);
/** It answered, then the connection went away under a request. */
const RESET = new Set(["ECONNRESET", "EPIPE"]);
/** Node's codes for a certificate that does not verify (chain, expiry, host name). */
const UNTRUSTED_CERTIFICATE = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ALTNAME/;

/** The socket failure an error reports (its own code, or its cause's as the AWS SDK wraps it); else undefined. */
export function socketFailure(error: unknown): SocketFailure | undefined {
  const code = codeOf(error) ?? codeOf((error as { cause?: unknown } | undefined)?.cause);
  if (code === undefined) return undefined;
  if (UNREACHABLE.has(code)) return { kind: "unreachable", code, phrase: `cannot connect (${code})` };
  if (RESET.has(code)) return { kind: "reset", code, phrase: `the connection was reset (${code})` };
  if (UNTRUSTED_CERTIFICATE.test(code))
    return { kind: "untrusted-certificate", code, phrase: `TLS certificate not trusted (${code})` };
  return undefined;
}

function codeOf(error: unknown): string | undefined {
  if (error === null || typeof error !== "object") return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" && code !== "" ? code : undefined;
}

/** The socket failure a retry may cure (nothing answered, or the connection dropped); else undefined. */
export function lostConnection(error: unknown): SocketFailure | undefined {
  const failure = socketFailure(error);
  return failure?.kind === "unreachable" || failure?.kind === "reset" ? failure : undefined;
}
