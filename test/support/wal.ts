/**
 * WAL streaming helpers for tests: a private PostgreSQL's positions and files (read through SQL, so no test needs
 * the server's file system), the archive a streamer writes, and the checks every WAL test makes — segments
 * contiguous, complete ones byte-identical to the server's own pg_wal files, nothing confirmed past the bucket.
 */
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import type { PgConnection } from "../../src/engines/postgres/connection.js";
import { withClient } from "../../src/engines/postgres/sql.js";
import { parseLsn, segmentOf, type Lsn, type WalListing } from "../../src/domain/wal.js";
import type { WalArchive } from "../../src/storage/wal-archive.js";
import type { PostgresServer } from "../harness/postgres.js";

export function connOf(server: Pick<PostgresServer, "host" | "port" | "user" | "password">): PgConnection {
  return {
    host: server.host,
    port: server.port,
    user: server.user,
    password: server.password,
    database: "postgres",
  };
}

export function envOf(
  server: Pick<PostgresServer, "host" | "port" | "user" | "password">,
): Record<string, string> {
  return {
    PGHOST: server.host,
    PGPORT: String(server.port),
    PGUSER: server.user,
    PGPASSWORD: server.password,
    PGDATABASE: "postgres",
  };
}

export async function query(
  conn: PgConnection,
  text: string,
  params: unknown[] = [],
): Promise<Array<Record<string, unknown>>> {
  return withClient(
    conn,
    conn.database,
    async (c) => (await c.query<Record<string, unknown>>(text, params)).rows,
  );
}

/** Commits a row and returns the server's WAL insert position right after the commit. */
export async function commitRow(conn: PgConnection, note: string): Promise<Lsn> {
  const rows = await withClient(conn, conn.database, async (c) => {
    await c.query(
      "CREATE TABLE IF NOT EXISTS wal_probe (id serial PRIMARY KEY, note text, at timestamptz DEFAULT now())",
    );
    await c.query("INSERT INTO wal_probe (note) VALUES ($1)", [note]);
    return (await c.query<{ lsn: string }>("SELECT pg_current_wal_lsn()::text AS lsn")).rows;
  });
  return parseLsn(rows[0]!.lsn);
}

/** Some megabytes of WAL, so segments fill. */
export async function writeLoad(conn: PgConnection, rows = 50_000): Promise<void> {
  await query(conn, "CREATE TABLE IF NOT EXISTS wal_load (id bigint, s text)");
  await query(
    conn,
    `INSERT INTO wal_load SELECT g, md5(g::text) || md5(random()::text) FROM generate_series(1, ${rows}) g`,
  );
}

/** Ends the current segment (it becomes complete) and returns the LSN where the next one starts. */
export async function switchWal(conn: PgConnection): Promise<Lsn> {
  await commitRow(conn, "before switch");
  await query(conn, "SELECT pg_switch_wal()");
  return parseLsn(String((await query(conn, "SELECT pg_current_wal_lsn()::text AS lsn"))[0]!["lsn"]));
}

export async function slotRestartLsn(conn: PgConnection, slot: string): Promise<Lsn | undefined> {
  const rows = await query(
    conn,
    "SELECT restart_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1",
    [slot],
  );
  const lsn = rows[0]?.["lsn"];
  return typeof lsn === "string" ? parseLsn(lsn) : undefined;
}

export async function archivedLsn(archive: WalArchive): Promise<Lsn> {
  const head = await archive.readHead();
  return head ? parseLsn(head.archivedLsn) : 0n;
}

/** Bounded wait for a condition on a real server or bucket (no fixed sleeps in assertions). */
export async function until(what: string, check: () => Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last = "";
  for (;;) {
    try {
      if (await check()) return;
    } catch (error) {
      last = (error as Error).message;
    }
    if (performance.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${last})` : ""}`);
    await sleep(200);
  }
}

/**
 * The slot never holds less than the bucket lacks: read the slot first, then the head (which only grows), so a
 * confirmation ahead of the bucket would show as restart_lsn > archivedLsn.
 */
export async function assertConfirmedWithinBucket(
  conn: PgConnection,
  slot: string,
  archive: WalArchive,
): Promise<void> {
  const restart = await slotRestartLsn(conn, slot);
  const archived = await archivedLsn(archive);
  if (restart !== undefined) {
    assert.ok(
      restart <= archived,
      `slot ${slot} confirmed ${restart} but the bucket holds only up to ${archived}`,
    );
  }
}

/** Every segment number from the first stored to the head's is present on some timeline up to the head's. */
export function assertContiguous(listing: WalListing): void {
  const head = listing.head;
  assert.ok(head, "the bucket has a WAL head");
  const present = new Set(listing.segments.filter((s) => s.timeline <= head.timeline).map((s) => s.segno));
  const first = Math.min(...present);
  const last = segmentOf(parseLsn(head.archivedLsn), head.segmentSize);
  const missing: number[] = [];
  for (let segno = first; segno <= last; segno++) if (!present.has(segno)) missing.push(segno);
  // The head's own segment may be exactly at a boundary with nothing in it yet.
  const boundary = parseLsn(head.archivedLsn) % BigInt(head.segmentSize) === 0n;
  assert.deepEqual(
    boundary ? missing.filter((s) => s !== last) : missing,
    [],
    "segments missing from the bucket",
  );
}

/** Every complete segment in the bucket equals the server's own file of that name (read with pg_read_binary_file). */
export async function assertIdenticalToServer(
  conn: PgConnection,
  archive: WalArchive,
  listing: WalListing,
  timeline?: number,
): Promise<number> {
  const size = listing.head!.segmentSize;
  let compared = 0;
  for (const segment of listing.segments.filter(
    (s) => !s.partial && (timeline === undefined || s.timeline === timeline),
  )) {
    const rows = await query(conn, "SELECT pg_read_binary_file('pg_wal/' || $1, 0, $2::bigint, true) AS b", [
      segment.name,
      size,
    ]);
    const onServer = rows[0]?.["b"] as Buffer | null;
    // Segments the server already recycled (older than its slot and last checkpoint) cannot be compared.
    if (!onServer) continue;
    const stored = await archive.fetchSegment(segment, size);
    assert.ok(
      stored.equals(onServer),
      `segment ${segment.name} in the bucket differs from the server's pg_wal file`,
    );
    compared++;
  }
  return compared;
}
