import { registerSecret } from "../../redact.js";

/** Where a PostgreSQL database is. The password is only ever read from the environment. */
export interface PgConnection {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password?: string;
}

export interface PgConnectionFlags {
  readonly host?: string | undefined;
  readonly port?: string | undefined;
  readonly database?: string | undefined;
  readonly user?: string | undefined;
}

/** Flags first, then the standard libpq variables, then libpq's own defaults. */
export function pgConnectionFrom(flags: PgConnectionFlags, env: NodeJS.ProcessEnv): PgConnection {
  const user = flags.user ?? env["PGUSER"] ?? "postgres";
  const password = env["PGPASSWORD"];
  registerSecret(password);
  const portText = flags.port ?? env["PGPORT"] ?? "5432";
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`--port must be a TCP port (got ${JSON.stringify(portText)})`);
  }
  return {
    host: flags.host ?? env["PGHOST"] ?? "localhost",
    port,
    database: flags.database ?? env["PGDATABASE"] ?? user,
    user,
    ...(password ? { password } : {}),
  };
}

/** The libpq environment for a tool run against `database`; the password travels here, never in argv. */
export function libpqEnv(conn: PgConnection, database: string = conn.database): Record<string, string> {
  return {
    PGHOST: conn.host,
    PGPORT: String(conn.port),
    PGUSER: conn.user,
    PGDATABASE: database,
    ...(conn.password ? { PGPASSWORD: conn.password } : {}),
    // A tool must fail rather than prompt when no password is given.
    PGCONNECT_TIMEOUT: "10",
  };
}

export function describeConnection(conn: PgConnection, database: string = conn.database): string {
  return `postgresql://${conn.user}@${conn.host}:${conn.port}/${database}`;
}
