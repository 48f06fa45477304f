/**
 * Point-in-time test helpers: a harness PostgreSQL that archives its WAL (the stand-in for the streamer,
 * wal-shipper.ts), directories the postgres account can reach, and a restored data directory started and queried.
 */
import { existsSync } from "node:fs";
import { chmod, chown, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { PgConnection } from "../../src/engines/postgres/connection.js";
import { withClient } from "../../src/engines/postgres/sql.js";
import { freePort, run } from "../harness/index.js";
import { lookupUser } from "../harness/process.js";
import { startPostgres, type PostgresServer } from "../harness/postgres.js";

export function postgresAccount(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const account = lookupUser("postgres");
  return account ? { uid: account.uid, gid: account.gid } : undefined;
}

/** A directory the postgres account can enter and write in (restores run postgres as it when tests run as root). */
export async function sharedDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  await chmod(dir, 0o777);
  return dir;
}

export interface ArchivingPostgres {
  readonly server: PostgresServer;
  readonly conn: PgConnection;
  readonly archiveDir: string;
  readonly env: Record<string, string>;
}

export async function startArchivingPostgres(): Promise<ArchivingPostgres> {
  const archiveDir = await sharedDir("capsule-pitr-archive-");
  const account = postgresAccount();
  if (account) await chown(archiveDir, account.uid, account.gid);
  const server = await startPostgres({ archiveWalTo: archiveDir });
  const conn: PgConnection = {
    host: server.host,
    port: server.port,
    user: server.user,
    password: server.password,
    database: "postgres",
  };
  const env = {
    PGHOST: server.host,
    PGPORT: String(server.port),
    PGUSER: server.user,
    PGPASSWORD: server.password,
    PGDATABASE: "postgres",
  };
  return { server, conn, archiveDir, env };
}

export async function query<T extends Record<string, unknown>>(
  conn: PgConnection,
  text: string,
  database = "postgres",
): Promise<T[]> {
  return withClient(conn, database, async (c) => (await c.query<T>(text)).rows);
}

/** `pg_ctl start -D dir` on a private socket, `work(conn)`, then `pg_ctl stop`: the restored cluster as a user starts it. */
export async function withStartedCluster<T>(
  binDir: string,
  dataDir: string,
  work: (conn: PgConnection) => Promise<T>,
): Promise<T> {
  const account = postgresAccount();
  const ids = account ? { uid: account.uid, gid: account.gid } : {};
  const socketDir = await sharedDir("capsule-pitr-sock-");
  const port = await freePort();
  const log = path.join(socketDir, "log");
  const options = `-p ${port} -k ${socketDir} -c listen_addresses= -c archive_mode=off`;
  await run(path.join(binDir, "pg_ctl"), ["start", "-w", "-D", dataDir, "-l", log, "-o", options], {
    ...ids,
    timeoutMs: 120_000,
  });
  try {
    return await work({ host: socketDir, port, user: "postgres", database: "postgres" });
  } finally {
    if (existsSync(path.join(dataDir, "postmaster.pid")))
      await run(path.join(binDir, "pg_ctl"), ["stop", "-w", "-D", dataDir, "-m", "fast"], ids);
  }
}
