/**
 * A stand-in WAL streamer for point-in-time tests: the harness server archives its completed segments into a
 * directory (`startPostgres({ archiveWalTo })`), and `shipWal` switches to a new segment, waits until the switched
 * one is archived, and puts every archived file into the bucket through capsule's own `WalArchive` (the contract the
 * real streamer writes through) with a `head.json` whose `coveredUntil` is the server's clock before the switch.
 * The lead switches the end-to-end tests to `capsule pg --stream-wal` once it is merged.
 */
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { PgConnection } from "../../src/engines/postgres/connection.js";
import { withClient } from "../../src/engines/postgres/sql.js";
import {
  formatLsn,
  parseHistoryFileName,
  parseLsn,
  parseWalFileName,
  segmentStart,
  type WalSink,
} from "../../src/domain/wal.js";

export interface ShippedWal {
  /** Every transaction committed before this server time is in the bucket. */
  readonly coveredUntil: string;
  readonly archivedLsn: string;
  readonly segments: number;
}

export async function shipWal(conn: PgConnection, archiveDir: string, sink: WalSink): Promise<ShippedWal> {
  const info = await withClient(conn, "postgres", async (c) => {
    const before = await c.query<{ t: Date; system: string; segment: string; version: string }>(
      "SELECT clock_timestamp() AS t, (SELECT system_identifier::text FROM pg_control_system()) AS system, " +
        "(SELECT setting FROM pg_settings WHERE name = 'wal_segment_size') AS segment, " +
        "current_setting('server_version') AS version",
    );
    const switched = await c.query<{ lsn: string; file: string }>(
      "SELECT lsn::text, pg_walfile_name(lsn) AS file FROM (SELECT pg_switch_wal() AS lsn) s",
    );
    const file = switched.rows[0]!.file;
    // The archiver runs on its own: wait until it has copied the segment the switch completed.
    for (let i = 0; i < 600; i++) {
      const r = await c.query<{ last: string | null }>(
        "SELECT last_archived_wal AS last FROM pg_stat_archiver",
      );
      if ((r.rows[0]!.last ?? "") >= file) break;
      await sleep(50);
    }
    return { ...before.rows[0]!, switchedAt: switched.rows[0]!.lsn };
  });
  const segmentSize = Number(info.segment);
  let highest = -1;
  let timeline = 1;
  let count = 0;
  for (const name of (await readdir(archiveDir)).sort()) {
    const history = parseHistoryFileName(name);
    if (history !== undefined) {
      await sink.putHistory(history, await readFile(path.join(archiveDir, name)));
      continue;
    }
    const parsed = parseWalFileName(name, segmentSize);
    if (!parsed) continue;
    await sink.putSegment({
      ...parsed,
      segmentSize,
      bytes: await readFile(path.join(archiveDir, name)),
      partial: false,
    });
    count++;
    if (parsed.segno > highest) highest = parsed.segno;
    timeline = Math.max(timeline, parsed.timeline);
  }
  // The last byte of the last complete segment: a head exactly on a segment boundary would name a segment the
  // bucket does not hold yet (the real streamer always has the next one as a partial).
  const archivedLsn = formatLsn(segmentStart(highest + 1, segmentSize) - 1n);
  const now = new Date().toISOString();
  const coveredUntil = info.t.toISOString();
  await sink.writeHead({
    version: 1,
    systemIdentifier: info.system,
    timeline,
    segmentSize,
    slot: "test-archive-command",
    serverVersion: info.version,
    archivedLsn,
    archivedAt: now,
    coveredUntil,
    serverLsn: formatLsn(parseLsn(info.switchedAt)),
    serverLsnAt: now,
    updatedAt: now,
  });
  return { coveredUntil, archivedLsn, segments: count };
}
