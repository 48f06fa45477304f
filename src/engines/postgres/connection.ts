import { registerSecret } from "../../redact.js";
import { configError, fieldOrEnv, readCaFile, serverAddress } from "../connection-fields.js";

/** Where a PostgreSQL database is. The password is only ever read from the environment. */
export interface PgConnection {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password?: string;
  /** TLS, when asked for; unset means a plain connection (libpq `sslmode=disable`). */
  readonly tls?: PgTls;
}

/**
 * TLS to PostgreSQL (docs/adr/0011). The libpq modes that verify — `verify-full` (chain and host name) and
 * `verify-ca` (chain only) — need the CA; `require` encrypts without verifying, so only with the opt-out.
 */
export type PgTls =
  | { readonly mode: "verify-full" | "verify-ca"; readonly rootCert: string; readonly ca: string }
  | { readonly mode: "require" };

/** libpq's variables and defaults. */
export const PG_SERVER = { hostEnv: "PGHOST", host: "localhost", portEnv: "PGPORT", port: 5432 };

export interface PgConnectionFlags {
  readonly host?: string | undefined;
  readonly port?: string | undefined;
  readonly database?: string | undefined;
  readonly user?: string | undefined;
  readonly sslmode?: string | undefined;
  readonly sslrootcert?: string | undefined;
  readonly insecureSkipTlsVerify?: boolean | undefined;
}

/**
 * The given fields first, then the standard libpq variables, then libpq's own defaults. Throws a `FieldError`
 * naming the field or variable at fault (the CLI shows a field as its flag).
 */
export function pgConnectionFrom(flags: PgConnectionFlags, env: NodeJS.ProcessEnv): PgConnection {
  const user = flags.user ?? env["PGUSER"] ?? "postgres";
  const password = env["PGPASSWORD"];
  registerSecret(password);
  const { host, port } = serverAddress(
    flags,
    env,
    PG_SERVER,
    "pass the user with {user} and the password in PGPASSWORD",
  );
  const tls = pgTlsFrom(flags, env);
  return {
    host,
    port,
    database: flags.database ?? env["PGDATABASE"] ?? user,
    user,
    ...(password ? { password } : {}),
    ...(tls ? { tls } : {}),
  };
}

/**
 * `--sslmode`/PGSSLMODE and `--sslrootcert`/PGSSLROOTCERT, held to "never an unverified TLS connection without
 * saying so": a CA alone means `verify-full`; libpq's opportunistic `prefer`/`allow` (which may fall back to
 * plaintext or accept any certificate) are refused; `require` needs `--insecure-skip-tls-verify`.
 */
export function pgTlsFrom(flags: PgConnectionFlags, env: NodeJS.ProcessEnv): PgTls | undefined {
  const rootCertSource = fieldOrEnv(flags.sslrootcert, "sslrootcert", env, "PGSSLROOTCERT");
  const rootCert = rootCertSource.value;
  const { value: modeGiven, name: modeName } = fieldOrEnv(flags.sslmode, "sslmode", env, "PGSSLMODE");
  const insecure = flags.insecureSkipTlsVerify === true;
  const mode = modeGiven ?? (rootCert ? "verify-full" : insecure ? "require" : "disable");
  switch (mode) {
    case "disable":
      if (insecure)
        throw configError(
          "insecureSkipTlsVerify",
          `{insecureSkipTlsVerify} needs TLS, but ${modeName} is disable`,
        );
      return undefined;
    case "require":
      if (!insecure) {
        throw configError(
          "sslmode",
          `${modeName} require does not verify the server: use verify-full with {sslrootcert}, or add {insecureSkipTlsVerify}`,
        );
      }
      return { mode };
    case "verify-ca":
    case "verify-full": {
      if (insecure)
        throw configError("insecureSkipTlsVerify", `{insecureSkipTlsVerify} contradicts ${modeName} ${mode}`);
      if (!rootCert)
        throw configError(
          "sslrootcert",
          `${modeName} ${mode} needs the CA: {sslrootcert} FILE (or PGSSLROOTCERT)`,
        );
      return { mode, rootCert, ca: readCaFile("sslrootcert", rootCertSource)! };
    }
    default:
      throw configError(
        "sslmode",
        `${modeName} must be disable, require, verify-ca or verify-full (got ${JSON.stringify(mode)}); ` +
          "prefer and allow may silently fall back to an unverified connection",
      );
  }
}

/** The libpq environment for a tool run against `database`; the password travels here, never in argv. */
export function libpqEnv(conn: PgConnection, database: string = conn.database): Record<string, string> {
  return {
    PGHOST: conn.host,
    PGPORT: String(conn.port),
    PGUSER: conn.user,
    PGDATABASE: database,
    ...(conn.password ? { PGPASSWORD: conn.password } : {}),
    // Explicit, so an inherited PGSSLMODE or libpq's default `prefer` cannot open an unverified connection.
    PGSSLMODE: conn.tls?.mode ?? "disable",
    ...(conn.tls && "rootCert" in conn.tls ? { PGSSLROOTCERT: conn.tls.rootCert } : {}),
    // A tool must fail rather than prompt when no password is given.
    PGCONNECT_TIMEOUT: "10",
  };
}

export function describeConnection(conn: PgConnection, database: string = conn.database): string {
  const tls = conn.tls ? `?sslmode=${conn.tls.mode}` : "";
  return `postgresql://${conn.user}@${conn.host}:${conn.port}/${database}${tls}`;
}
