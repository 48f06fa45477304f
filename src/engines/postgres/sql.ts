/**
 * The PostgreSQL client adapter: with replication.ts (walsender sessions), the only file that imports `pg`. Connects with a bounded timeout and turns
 * driver errors into one line that names the server and the database, never the password.
 */
import pg from "pg";
import { CapsuleError, ErrorCode } from "../../domain/errors.js";
import { redact } from "../../redact.js";
import { socketFailure } from "../../util/socket-error.js";
import { describeConnection, type PgConnection } from "./connection.js";

const CONNECT_TIMEOUT_MS = 10_000;

export function connect(
  conn: PgConnection,
  database: string = conn.database,
  options: { applicationName?: string } = {},
): Promise<pg.Client> {
  const client = new pg.Client(clientConfig(conn, database, options.applicationName ?? "capsule"));
  return connected(client, (error) => translatePgError(error, conn, database));
}

/** Connects `client`; if it cannot, the client is ended and the error thrown as `translate` words it. */
export async function connected(client: pg.Client, translate: (error: unknown) => Error): Promise<pg.Client> {
  // An idle client whose server goes away emits 'error'; the next query reports it instead of crashing us.
  client.on("error", () => undefined);
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw translate(error);
  }
  return client;
}

/** node-postgres's settings for `conn`: a bounded connect, the TLS policy, the password only when there is one. */
export function clientConfig(
  conn: PgConnection,
  database: string,
  applicationName?: string,
): pg.ClientConfig {
  return {
    host: conn.host,
    port: conn.port,
    user: conn.user,
    database,
    ...(conn.password ? { password: conn.password } : {}),
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    ...(applicationName ? { application_name: applicationName } : {}),
    ssl: sslOptions(conn),
  };
}

/** The same policy libpq gets through PGSSLMODE (connection.ts), for node-postgres. */
function sslOptions(conn: PgConnection): pg.ClientConfig["ssl"] {
  const tls = conn.tls;
  if (!tls) return false;
  if (tls.mode === "require") return { rejectUnauthorized: false };
  return {
    ca: tls.ca,
    rejectUnauthorized: true,
    // verify-ca checks the chain only, as libpq does.
    ...(tls.mode === "verify-ca" ? { checkServerIdentity: () => undefined } : {}),
  };
}

export async function withClient<T>(
  conn: PgConnection,
  database: string,
  work: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = await connect(conn, database);
  try {
    return await work(client);
  } catch (error) {
    throw translatePgError(error, conn, database);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Quotes an identifier for SQL text (for statements that take no parameters, such as CREATE DATABASE). */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function translatePgError(error: unknown, conn: PgConnection, database: string): Error {
  if (error instanceof CapsuleError) return error;
  const e = error as { code?: string; message?: string };
  const where = describeConnection(conn, database);
  const message = e.message ?? String(error);
  // pg_hba.conf with only `hostssl` lines: capsule connects in plain text unless told to use TLS (verified).
  if (e.code === "28000" && !conn.tls && /no encryption/i.test(message)) {
    return new CapsuleError(
      ErrorCode.DatabaseError,
      `${where}: the server accepts only TLS connections: pass --sslmode verify-full --sslrootcert CA_FILE (or PGSSLMODE/PGSSLROOTCERT)`,
    );
  }
  // node-postgres asks for the password only when the server does (SCRAM): without one it fails in its own words.
  if (!conn.password && /client password must be a string|no password supplied/i.test(message)) {
    return new CapsuleError(
      ErrorCode.DatabaseError,
      `${where}: the server asks for a password and none is set: set PGPASSWORD`,
    );
  }
  switch (e.code) {
    case "28P01":
    case "28000":
      return new CapsuleError(
        ErrorCode.DatabaseError,
        `${where}: authentication failed for user "${conn.user}"`,
      );
    case "3D000":
      return new CapsuleError(ErrorCode.DatabaseError, `${where}: database "${database}" does not exist`);
  }
  const failure = socketFailure(error);
  if (failure?.kind === "unreachable" || failure?.kind === "reset")
    return new CapsuleError(ErrorCode.DatabaseError, `${where}: ${failure.phrase}`);
  if (conn.tls && failure?.kind === "untrusted-certificate") {
    return new CapsuleError(
      ErrorCode.DatabaseError,
      `${where}: ${failure.phrase}: pass --sslrootcert with the CA that signed it`,
    );
  }
  if (/The server does not support SSL connections/i.test(message)) {
    return new CapsuleError(ErrorCode.DatabaseError, `${where}: the server does not accept TLS`);
  }
  if (/timeout/i.test(message))
    return new CapsuleError(ErrorCode.DatabaseError, `${where}: connection timed out`);
  return new CapsuleError(ErrorCode.DatabaseError, redact(`${where}: ${message}`));
}
