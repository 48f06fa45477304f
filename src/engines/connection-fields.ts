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

/** Where an engine's server is when no field says: its standard variables and its client's defaults. */
export interface ServerDefaults {
  readonly hostEnv: string;
  readonly host: string;
  readonly portEnv: string;
  readonly port: number;
}

/**
 * The host and TCP port from the fields, else the variables, else the defaults. A bad port, or a host with a
 * credential in it, is refused naming the field or variable; the host's refusal says `instead`.
 */
export function serverAddress(
  given: { readonly host?: string | undefined; readonly port?: string | undefined },
  env: NodeJS.ProcessEnv,
  defaults: ServerDefaults,
  instead: string,
): { host: string; port: number } {
  const portGiven = fieldOrEnv(given.port, "port", env, defaults.portEnv);
  const text = portGiven.value ?? String(defaults.port);
  const port = Number(text);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw configError("port", `${portGiven.name} must be a TCP port (got ${JSON.stringify(text)})`);
  }
  const { value: host = defaults.host, name } = fieldOrEnv(given.host, "host", env, defaults.hostEnv);
  const problem = hostProblem(host);
  if (problem) throw configError("host", `${name} ${problem}: ${instead}`);
  return { host, port };
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
