/**
 * Turning the daemon's flags and environment into values, at the boundary (docs/style.md §4): durations, the listen
 * address, the token, this replica's identity and the Lease's namespace. Errors name the flag and the value.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { CapsuleError, ErrorCode } from "../domain/errors.js";
import { parsePeriod } from "../plan/schedule.js";
import { registerSecret } from "../redact.js";

const SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/** `30s`, `5m`, `1h` → milliseconds. */
export function parseDuration(flag: string, value: string): number {
  const seconds = parsePeriod(value);
  if (typeof seconds !== "number") throw config(`${flag} ${seconds.reason} (got ${JSON.stringify(value)})`);
  return seconds * 1000;
}

/** `:8080`, `8080`, `127.0.0.1:8080`, `[::1]:8080` → host and port. */
export function parseListen(value: string): { host: string; port: number } {
  const match = /^(?:(\[[0-9a-fA-F:]+\]|[^:]*):)?(\d{1,5})$/.exec(value);
  const port = Number(match?.[2]);
  if (!match || port > 65535) throw config(`--listen must be [host]:port (got ${JSON.stringify(value)})`);
  const host = (match[1] ?? "").replace(/^\[|\]$/g, "") || "0.0.0.0";
  return { host, port };
}

/** The bearer token from the variable `--token-env` names; registered for redaction. */
export function tokenFromEnv(variable: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  if (variable === undefined) return undefined;
  const token = env[variable];
  if (!token) throw config(`--token-env ${variable}: the variable is not set or empty`);
  if (token.length < 16) throw config(`--token-env ${variable}: the token must be at least 16 characters`);
  registerSecret(token);
  return token;
}

/** The pod name (HOSTNAME) plus a random suffix, like client-go: a restarted pod is a new candidate. */
export function defaultIdentity(env: NodeJS.ProcessEnv): string {
  return `${env["HOSTNAME"] || hostname()}_${randomBytes(4).toString("hex")}`;
}

/** POD_NAMESPACE, else the service account's namespace, else "default". */
export function defaultLeaseNamespace(env: NodeJS.ProcessEnv): string {
  if (env["POD_NAMESPACE"]) return env["POD_NAMESPACE"];
  try {
    return readFileSync(SERVICE_ACCOUNT_NAMESPACE, "utf8").trim() || "default";
  } catch {
    return "default";
  }
}

function config(message: string): CapsuleError {
  return new CapsuleError(ErrorCode.Config, message);
}
