/**
 * What every engine's connection does with its fields: take the field, else the engine's standard variable, and name
 * whichever was used when the value is bad (`{port}` for the field, which the CLI shows as its flag, or `PGPORT`).
 */
import { readFileSync } from "node:fs";
import type { TargetConnection } from "../domain/connection.js";
import { ErrorCode, FieldError } from "../domain/errors.js";
import { hostProblem } from "../redact.js";
import type { Fields } from "./engine.js";

/** A compiled target's connection as the fields `connect` reads (its pod's environment holds the secrets). */
export function targetFields(connection: TargetConnection): Fields {
  const { host, database, url } = connection;
  return { host, port: String(connection.port), database, url };
}

/** An engine's `insecureWarning`: TLS whose certificate is not checked exposes `secret` and the data. */
export function unverifiedTlsWarning(where: string, secret = "the password"): string {
  return `the certificate of ${where} is not checked; anyone on the path can read ${secret} and the data`;
}

export function configError(field: string, template: string): FieldError {
  return new FieldError(ErrorCode.Config, field, template);
}

/** A value and the name to blame for it: the field's placeholder if it was given, else the variable's name. */
export interface Sourced {
  readonly value: string | undefined;
  readonly name: string;
}

export function fieldOrEnv(
  given: string | undefined,
  field: string,
  env: NodeJS.ProcessEnv,
  variable: string,
): Sourced {
  return given !== undefined
    ? { value: given, name: `{${field}}` }
    : { value: env[variable], name: variable };
}

/** A TCP port from the field or variable, else `fallback`. */
export function tcpPort(
  given: string | undefined,
  env: NodeJS.ProcessEnv,
  variable: string,
  fallback: number,
) {
  const { value = String(fallback), name } = fieldOrEnv(given, "port", env, variable);
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw configError("port", `${name} must be a TCP port (got ${JSON.stringify(value)})`);
  }
  return port;
}

/** A host from the field or variable, else `fallback`; one with a credential in it is refused, saying `instead`. */
export function hostName(
  given: string | undefined,
  env: NodeJS.ProcessEnv,
  variable: string,
  fallback: string,
  instead: string,
): string {
  const { value = fallback, name } = fieldOrEnv(given, "host", env, variable);
  const problem = hostProblem(value);
  if (problem) throw configError("host", `${name} ${problem}: ${instead}`);
  return value;
}

/** The PEM text of a CA file a field or variable names; unreadable is a `LocalFile` error naming it. */
export function readCaFile(field: string, source: Sourced): string | undefined {
  if (!source.value) return undefined;
  try {
    return readFileSync(source.value, "utf8");
  } catch (error) {
    throw new FieldError(
      ErrorCode.LocalFile,
      field,
      `${source.name} ${source.value}: ${(error as NodeJS.ErrnoException).code ?? "unreadable"}`,
    );
  }
}
