/**
 * Scratch databases capsule creates on a server (`<db>_capsule_restore_<ts>` for a swap restore, `capsule_verify_<ts>`
 * for a drill on a verification server) and how another run tells a live one's from debris. While capsule works in a
 * scratch database it holds an extra session whose `application_name` is derived from that database's name: the
 * server ends the session the moment capsule dies, however it dies, so "no such session" means "nobody owns it" — a
 * test that holds across hosts, unlike a PID. A live run's scratch is never reported or removed.
 */
import { createHash } from "node:crypto";
import { hostname } from "node:os";
import type { PgConnection } from "./connection.js";
import { connect, ident, withClient } from "./sql.js";

/** Names capsule gives its scratch databases; `_pre_restore_` databases are kept data, never debris. */
const SCRATCH_NAME = "(_capsule_restore_|^capsule_verify_)[0-9]{14}$";
const OWNER_PREFIX = "capsule-scratch:";

/** Within application_name's 63 bytes whatever the database name's length. */
export function ownerApplicationName(database: string): string {
  return OWNER_PREFIX + createHash("md5").update(database, "utf8").digest("hex").slice(0, 16);
}

export interface ScratchClaim {
  release(): Promise<void>;
}

/** Marks `database` (about to be created) as this process' own until `release()` or the process' death. */
export async function claimScratch(
  conn: PgConnection,
  maintenance: string,
  database: string,
): Promise<ScratchClaim> {
  const client = await connect(conn, maintenance, { applicationName: ownerApplicationName(database) });
  return { release: () => client.end().catch(() => undefined) };
}

/** For whoever finds the database by hand: which capsule made it, and for what. */
export function scratchComment(purpose: string): string {
  return `capsule scratch database: ${purpose}; pid ${process.pid} on ${hostname()} at ${new Date().toISOString()}`;
}

/** Scratch databases whose capsule is gone: left by a run that was killed (SIGKILL, OOM, a lost node). */
export async function findLeftoverDatabases(conn: PgConnection, maintenance: string): Promise<string[]> {
  const result = await withClient(conn, maintenance, (c) =>
    c.query<{ datname: string }>(
      `SELECT datname FROM pg_database d WHERE datname ~ $1 AND NOT EXISTS (
         SELECT 1 FROM pg_stat_activity a WHERE a.application_name = $2 || left(md5(d.datname), 16))
       ORDER BY 1`,
      [SCRATCH_NAME, OWNER_PREFIX],
    ),
  );
  return result.rows.map((r) => r.datname);
}

export async function dropDatabase(conn: PgConnection, maintenance: string, name: string): Promise<void> {
  await withClient(conn, maintenance, (c) => c.query(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`));
}
