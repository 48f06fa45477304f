/**
 * `capsule pg --stream-wal` against a real PostgreSQL of its own (the harness server with replication enabled; a
 * hot standby of it for the timeline switch) into file:// and radosgw buckets: a commit reaches the bucket within
 * the upload interval, complete segments are byte-identical to the server's pg_wal files, the slot is never
 * confirmed past the bucket, a restarted streamer continues without a gap, a promoted standby streams on timeline 2
 * with its history file, and a server that is not set up is told what it needs in one line.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseLsn } from "../../src/domain/wal.js";
import type { PgConnection } from "../../src/engines/postgres/connection.js";
import { streamWal, type WalStreamSummary } from "../../src/engines/postgres/wal-streamer.js";
import { openBackupStore } from "../../src/runtime/bucket.js";
import type { WalArchive } from "../../src/storage/wal-archive.js";
import { createBucket, s3Env, testServers, uniqueName, type TestServers } from "../harness/index.js";
import { startPostgres, type PostgresServer } from "../harness/postgres.js";
import { capsule } from "../support/cli.js";
import {
  archivedLsn,
  assertConfirmedWithinBucket,
  assertContiguous,
  assertIdenticalToServer,
  commitRow,
  connOf,
  envOf,
  query,
  slotRestartLsn,
  switchWal,
  until,
  writeLoad,
} from "../support/wal.js";

interface Streamer {
  readonly lines: string[];
  readonly done: Promise<WalStreamSummary>;
  stop(): Promise<WalStreamSummary>;
}

/** The streamer in this process, stopped by its AbortSignal as a SIGTERM would stop it. */
function startStreamer(conn: PgConnection, archive: WalArchive, slot: string, intervalMs = 1000): Streamer {
  const abort = new AbortController();
  const lines: string[] = [];
  const done = streamWal(conn, archive, {
    slot,
    uploadIntervalMs: intervalMs,
    signal: abort.signal,
    report: {
      info: (m, f) => lines.push(`info ${m} ${JSON.stringify(f)}`),
      warn: (m, f) => lines.push(`warn ${m} ${JSON.stringify(f)}`),
    },
    sinkDescription: archive.description,
  });
  // A failure surfaces at stop(); until then it must not be an unhandled rejection.
  done.catch(() => undefined);
  return {
    lines,
    done,
    stop: async () => {
      abort.abort();
      return done;
    },
  };
}

describe("capsule pg --stream-wal", () => {
  let servers: TestServers;
  let server: PostgresServer;
  let conn: PgConnection;
  let fileBucket: string;
  let s3Bucket: string;

  before(async () => {
    servers = await testServers();
    server = await startPostgres();
    conn = connOf(server);
    fileBucket = `file://${await mkdtemp(join(tmpdir(), "capsule-wal-"))}`;
    s3Bucket = `s3://${uniqueName("walstream")}/capsule`;
    await createBucket(servers.s3, new URL(s3Bucket).host);
  });

  after(async () => {
    await server?.stop();
  });

  const archiveIn = (bucket: string, target: string): WalArchive =>
    openBackupStore({ bucket }, s3Env(servers.s3)).walArchive("walc", target);

  test("GIVEN a streamer on a quiet server WHEN a row commits THEN the head covers its LSN within the interval and the slot is never confirmed past the bucket", async () => {
    const archive = archiveIn(fileBucket, "quiet");
    const streamer = startStreamer(conn, archive, "capsule_quiet");
    try {
      await until("the first head", async () => (await archive.readHead()) !== undefined);
      const committed = await commitRow(conn, "quiet commit");
      await until("the commit in the bucket", async () => {
        await assertConfirmedWithinBucket(conn, "capsule_quiet", archive);
        return (await archivedLsn(archive)) >= committed;
      });
      const head = (await archive.readHead())!;
      assert.equal(head.slot, "capsule_quiet");
      assert.ok(parseLsn(head.serverLsn) >= committed);
      // With nothing else written, the bucket soon covers the server's clock past the commit.
      const rows = await query(conn, "SELECT max(at) AS at FROM wal_probe WHERE note = 'quiet commit'");
      const committedAt = (rows[0]!["at"] as Date).getTime();
      await until("coveredUntil past the commit", async () => {
        const covered = Date.parse((await archive.readHead())!.coveredUntil);
        return covered >= committedAt;
      });
    } finally {
      await streamer.stop();
    }
    // Stopped: the last bytes are stored and exactly that is confirmed.
    assert.equal(await slotRestartLsn(conn, "capsule_quiet"), await archivedLsn(archive));
  });

  test("GIVEN a streamer to radosgw WHEN segments complete and it is restarted between writes THEN the bucket's segments are contiguous and byte-identical to pg_wal", async () => {
    const archive = archiveIn(s3Bucket, "busy");
    let streamer = startStreamer(conn, archive, "capsule_busy");
    let switched = 0n;
    try {
      for (let i = 0; i < 2; i++) {
        await writeLoad(conn, 40_000);
        switched = await switchWal(conn);
      }
      await until("the switched segments in the bucket", async () => {
        await assertConfirmedWithinBucket(conn, "capsule_busy", archive);
        return (await archivedLsn(archive)) >= switched;
      });
    } finally {
      await streamer.stop();
    }
    await writeLoad(conn, 40_000);
    const whileDown = await switchWal(conn);
    streamer = startStreamer(conn, archive, "capsule_busy");
    try {
      const last = await commitRow(conn, "after restart");
      await until("the WAL written while stopped", async () => (await archivedLsn(archive)) >= last);
      assert.ok((await archivedLsn(archive)) >= whileDown);
    } finally {
      await streamer.stop();
    }
    const listing = await archive.listing();
    assertContiguous(listing);
    const compared = await assertIdenticalToServer(conn, archive, listing);
    assert.ok(compared >= 3, `compared ${compared} complete segments with pg_wal`);
  });

  test("GIVEN the slot dropped and its WAL recycled while the streamer was stopped WHEN it starts again THEN the gap is refused naming the segments", async () => {
    const archive = archiveIn(fileBucket, "gap");
    let streamer = startStreamer(conn, archive, "capsule_gap");
    try {
      const first = await commitRow(conn, "before the gap");
      await until("WAL in the bucket", async () => (await archivedLsn(archive)) >= first);
    } finally {
      await streamer.stop();
    }
    const before = await archive.readHead();
    await query(conn, "SELECT pg_drop_replication_slot('capsule_gap')");
    for (let i = 0; i < 2; i++) {
      await writeLoad(conn, 20_000);
      await switchWal(conn);
    }
    await query(conn, "CHECKPOINT");
    streamer = startStreamer(conn, archive, "capsule_gap");
    await assert.rejects(streamer.done, (error: Error) => {
      assert.match(
        error.message,
        /^gap: .* holds WAL up to .* segments 0000000100000000000000[0-9A-F]{2}\.\.0000000100000000000000[0-9A-F]{2} are in neither/,
      );
      return true;
    });
    assert.deepEqual(await archive.readHead(), before, "the head is untouched");
    assert.equal(
      await slotRestartLsn(conn, "capsule_gap"),
      undefined,
      "the slot it made for nothing is gone",
    );
  });

  test("GIVEN a role without REPLICATION WHEN it streams THEN one line names ALTER ROLE … REPLICATION", async () => {
    await query(conn, "CREATE ROLE norepl LOGIN PASSWORD 'norepl-pass'");
    const r = await capsule(["pg", "--stream-wal", "--target", "norepl", "--bucket", fileBucket], {
      ...envOf(server),
      PGUSER: "norepl",
      PGPASSWORD: "norepl-pass",
    });
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /CAPSULE_REPLICATION_NOT_SET_UP: .*ALTER ROLE "norepl" REPLICATION/);
  });

  test("GIVEN no pg_hba.conf replication line for the user WHEN it streams THEN one line names the line to add", async () => {
    await query(conn, "CREATE ROLE hbauser LOGIN REPLICATION PASSWORD 'hba-pass'");
    const hba = join(server.dataDir, "pg_hba.conf");
    writeFileSync(
      hba,
      [
        "local all all trust",
        "local replication all trust",
        "host all all 127.0.0.1/32 scram-sha-256",
        "host replication postgres 127.0.0.1/32 scram-sha-256",
        "",
      ].join("\n"),
    );
    await query(conn, "SELECT pg_reload_conf()");
    try {
      const r = await capsule(["pg", "--stream-wal", "--target", "hba", "--bucket", fileBucket], {
        ...envOf(server),
        PGUSER: "hbauser",
        PGPASSWORD: "hba-pass",
      });
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(
        r.stderr,
        /CAPSULE_REPLICATION_NOT_SET_UP: .*pg_hba\.conf has no replication line for user "hbauser".*host replication hbauser 127\.0\.0\.1\/32/,
      );
    } finally {
      writeFileSync(
        hba,
        [
          "local all all trust",
          "local replication all trust",
          "host all all 127.0.0.1/32 scram-sha-256",
          "host replication all 127.0.0.1/32 scram-sha-256",
          "",
        ].join("\n"),
      );
      await query(conn, "SELECT pg_reload_conf()");
    }
  });

  test("GIVEN a server with max_wal_senders 0 WHEN it streams THEN one line names max_wal_senders", async () => {
    const noSenders = await startPostgres({ settings: { max_wal_senders: "0" } });
    try {
      const r = await capsule(
        ["pg", "--stream-wal", "--target", "nosenders", "--bucket", fileBucket],
        envOf(noSenders),
      );
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, /CAPSULE_REPLICATION_NOT_SET_UP: .*max_wal_senders is 0/);
    } finally {
      await noSenders.stop();
    }
  });

  test("GIVEN a bucket whose head is another cluster's WHEN a server streams into that target THEN it is refused in one line", async () => {
    const archive = archiveIn(fileBucket, "foreign");
    await archive.writeHead({
      version: 1,
      systemIdentifier: "1234567890",
      timeline: 1,
      segmentSize: 16 * 1024 * 1024,
      slot: "capsule_foreign",
      archivedLsn: "0/3000000",
      archivedAt: new Date().toISOString(),
      coveredUntil: new Date().toISOString(),
      serverLsn: "0/3000000",
      serverLsnAt: new Date().toISOString(),
      updatedAt: new Date().toISOString(),
    });
    const r = await capsule(
      ["pg", "--stream-wal", "--cluster", "walc", "--target", "foreign", "--bucket", fileBucket],
      envOf(server),
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /CAPSULE_REFUSED: .*database system 1234567890/);
    assert.equal((await archive.readHead())!.systemIdentifier, "1234567890", "the foreign head is untouched");
  });

  test("GIVEN a bad --slot or a --slot given to --create THEN each is refused naming the flag", async () => {
    const bad = await capsule(
      ["pg", "--stream-wal", "--slot", "Bad-Slot", "--bucket", fileBucket],
      envOf(server),
    );
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /--slot "Bad-Slot": a slot name is lowercase letters, digits and underscores/);
    const misplaced = await capsule(["pg", "--create", "--slot", "x", "--bucket", fileBucket], envOf(server));
    assert.equal(misplaced.code, 2, misplaced.stderr);
    assert.match(misplaced.stderr, /--slot does not apply to --create/);
  });

  test("GIVEN a standby promoted to timeline 2 WHEN it streams into the same target THEN its history file is stored and timeline 2's segments continue timeline 1's", async () => {
    const archive = archiveIn(s3Bucket, "switch");
    const primaryStreamer = startStreamer(conn, archive, "capsule_switch");
    let standby: PostgresServer | undefined;
    try {
      await commitRow(conn, "timeline 1");
      standby = await startPostgres({ standbyOf: server });
      const standbyConn = connOf(standby);
      // The standby keeps its WAL for the streamer from before the promotion on.
      await query(standbyConn, "SELECT pg_create_physical_replication_slot('capsule_switch', true)");
      const last = await commitRow(conn, "last on timeline 1");
      await until("the primary's WAL in the bucket", async () => (await archivedLsn(archive)) >= last);
      await primaryStreamer.stop();
      const primaryEnd = parseLsn(
        String((await query(conn, "SELECT pg_current_wal_flush_lsn()::text AS l"))[0]!["l"]),
      );
      await until("the standby to replay the primary's WAL", async () => {
        const rows = await query(standbyConn, "SELECT pg_last_wal_replay_lsn()::text AS l");
        return parseLsn(String(rows[0]!["l"])) >= primaryEnd;
      });
      await query(standbyConn, "SELECT pg_promote(true, 60)");
      await writeLoad(standbyConn, 20_000);
      const streamer = startStreamer(standbyConn, archive, "capsule_switch");
      let onTimeline2 = 0n;
      try {
        onTimeline2 = await switchWal(standbyConn);
        const after = await commitRow(standbyConn, "timeline 2");
        await until("timeline 2 in the bucket", async () => {
          const head = await archive.readHead();
          return head?.timeline === 2 && parseLsn(head.archivedLsn) >= after;
        });
      } finally {
        await streamer.stop();
      }
      const listing = await archive.listing();
      assert.deepEqual(listing.historyTimelines, [2]);
      const history = (
        await query(standbyConn, "SELECT pg_read_binary_file('pg_wal/00000002.history') AS b")
      )[0]!["b"];
      assert.ok(
        (await archive.fetchHistory(2))!.equals(history as Buffer),
        "the history file is the server's",
      );
      assert.ok(listing.segments.some((s) => s.timeline === 1));
      assert.ok(listing.segments.some((s) => s.timeline === 2 && !s.partial));
      assertContiguous(listing);
      const compared = await assertIdenticalToServer(standbyConn, archive, listing, 2);
      assert.ok(compared >= 1, "a complete timeline-2 segment was compared with pg_wal");
      assert.ok((await archivedLsn(archive)) >= onTimeline2);
    } finally {
      await primaryStreamer.stop().catch(() => undefined);
      await standby?.stop();
    }
  });
});
