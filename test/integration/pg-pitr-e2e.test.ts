/**
 * Point-in-time recovery end to end, with capsule's own streamer and nothing else (#19): the platform's database
 * under a steady write load is lost — its server killed `-m immediate`, its data directory deleted, the streamer
 * killed -9 at the same moment — and the bucket alone restores every transaction committed 15 s or more before the
 * loss (the default 10 s upload interval). The restored cluster then streams into the same target on its new
 * timeline, and a second restore follows the switch.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import { parseLsn } from "../../src/domain/wal.js";
import type { PgConnection } from "../../src/engines/postgres/connection.js";
import { openBackupStore } from "../../src/runtime/bucket.js";
import type { WalArchive } from "../../src/storage/wal-archive.js";
import { createBucket, s3Env, testServers, uniqueName, type TestServers } from "../harness/index.js";
import { freePort } from "../harness/ports.js";
import { startPostgres, PG_PASSWORD, type PostgresServer } from "../harness/postgres.js";
import { run } from "../harness/process.js";
import { capsule } from "../support/cli.js";
import { startCapsule, type CapsuleProcess } from "../support/capsule-process.js";
import { postgresAccount, sharedDir, withStartedCluster } from "../support/pitr.js";
import { connOf, envOf, query, until } from "../support/wal.js";

const cluster = "pitre2e";
const target = "app";
/** The bar: every transaction committed this long before the loss is restored. */
const RPO_MS = 15_000;
/** How long the load runs before the loss: longer than one upload interval and the bar together. */
const LOAD_MS = 30_000;

describe("point-in-time recovery with capsule's streamer, after losing the server", () => {
  let servers: TestServers;
  let source: PostgresServer;
  let bucket: string;
  let restores: string;
  let env: Record<string, string>;
  let archive: WalArchive;
  /** Row id → when its INSERT's commit returned to the client (ms). */
  const committed = new Map<number, number>();
  let lostAt = 0;
  let firstRestore = "";

  before(async () => {
    servers = await testServers();
    source = await startPostgres();
    bucket = `s3://${uniqueName("pitre2e")}/capsule`;
    await createBucket(servers.s3, new URL(bucket).host);
    restores = await sharedDir("capsule-pitr-e2e-");
    env = { ...s3Env(servers.s3), ...envOf(source), CAPSULE_BUCKET: bucket };
    archive = openBackupStore({ bucket }, env).walArchive(cluster, target);
  });

  after(async () => {
    await source?.stop();
    if (restores) await rm(restores, { recursive: true, force: true });
  });

  function streamer(extraEnv: Record<string, string> = {}): CapsuleProcess {
    // The default upload interval (10 s): the bar is proven with what an operator gets.
    return startCapsule(["pg", "--stream-wal", "--cluster", cluster, "--target", target], {
      ...env,
      ...extraEnv,
    });
  }

  test("GIVEN WAL streamed under load WHEN the server dies with its disk and the streamer with it THEN the bucket restores every commit older than 15 s", async (t) => {
    const conn = connOf(source);
    await query(conn, "CREATE TABLE orders (id int PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())");
    const wal = streamer();
    try {
      await until("the streamer's first head", async () => (await archive.readHead()) !== undefined);
      const created = await capsule(
        ["pg", "--create", "--physical", "--cluster", cluster, "--target", target],
        env,
      );
      assert.equal(created.code, 0, created.stderr);

      // A steady load: one transaction every 100 ms, each commit's return time noted by the client; on a loaded
      // machine commits come slower, so the load also runs until more than 100 of them are past the bar.
      const end = Date.now() + LOAD_MS;
      const pastTheBar = () => [...committed.values()].filter((at) => at <= Date.now() - RPO_MS).length;
      for (let id = 1; Date.now() < end || pastTheBar() <= 100; id++) {
        await query(conn, "INSERT INTO orders (id) VALUES ($1)", [id]);
        committed.set(id, Date.now());
        await sleep(100);
      }
    } finally {
      // The loss: the postmaster gets PostgreSQL's immediate shutdown (no checkpoint, no final WAL flush to
      // anyone), the streamer is killed -9 at once, and the data directory goes.
      const pid = Number(readFileSync(path.join(source.dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
      lostAt = Date.now();
      process.kill(pid, "SIGQUIT");
      wal.signal("SIGKILL");
      await wal.exited;
    }
    await until("the postmaster to exit", () => {
      try {
        process.kill(
          Number(readFileSync(path.join(source.dataDir, "postmaster.pid"), "utf8").split("\n")[0]),
          0,
        );
        return Promise.resolve(false);
      } catch {
        return Promise.resolve(true);
      }
    });
    await rm(source.dataDir, { recursive: true, force: true });

    firstRestore = path.join(restores, "first");
    const restored = await capsule(
      [
        "pg",
        "--restore",
        "--physical",
        "--cluster",
        cluster,
        "--target",
        target,
        "--to-data-dir",
        firstRestore,
      ],
      env,
    );
    assert.equal(restored.code, 0, restored.stderr);

    const rows = await withStartedCluster(source.binDir, firstRestore, async (c) =>
      (await query(c, "SELECT id FROM orders ORDER BY id")).map((r) => Number(r["id"])),
    );
    const must = [...committed].filter(([, at]) => at <= lostAt - RPO_MS).map(([id]) => id);
    assert.ok(must.length > 100, `the load committed ${must.length} rows before the bar`);
    const present = new Set(rows);
    const missing = must.filter((id) => !present.has(id));
    assert.deepEqual(missing, [], "every transaction committed 15 s or more before the loss is restored");
    // Nothing from the future and no holes: the restore is a prefix of what was committed, in commit order.
    assert.deepEqual(
      rows,
      rows.map((_, i) => i + 1),
      "the restored rows are exactly the first N commits",
    );
    const newest = Math.max(...rows);
    t.diagnostic(
      `committed ${committed.size} rows; restored ${rows.length}; the newest restored committed ` +
        `${((lostAt - committed.get(newest)!) / 1000).toFixed(1)} s before the loss`,
    );
  });

  test("GIVEN the restored cluster promoted on a new timeline WHEN it streams into the same target THEN a restore follows the timeline switch", async () => {
    assert.ok(firstRestore && existsSync(firstRestore), "needs the first test's restore");
    const restoredServer = await startRestored(source.binDir, firstRestore);
    let switchedRows: number[] = [];
    try {
      const conn = restoredServer.conn;
      const timeline = (await query(conn, "SELECT timeline_id FROM pg_control_checkpoint()"))[0]![
        "timeline_id"
      ];
      assert.ok(Number(timeline) >= 2, `the restore promoted onto a new timeline (got ${String(timeline)})`);

      const wal = streamer({ PGHOST: "127.0.0.1", PGPORT: String(restoredServer.port) });
      try {
        for (let id = 1_000_000; id < 1_000_050; id++) {
          await query(conn, "INSERT INTO orders (id) VALUES ($1)", [id]);
          switchedRows.push(id);
        }
        const lsn = parseLsn(String((await query(conn, "SELECT pg_current_wal_lsn()::text AS l"))[0]!["l"]));
        await until("the new timeline's commits in the bucket", async () => {
          const head = await archive.readHead();
          return (
            head !== undefined && head.timeline === Number(timeline) && parseLsn(head.archivedLsn) >= lsn
          );
        });
      } finally {
        wal.signal("SIGTERM");
        const exit = await wal.exited;
        assert.equal(exit.code, 0, wal.stderr());
      }
      const listing = await archive.listing();
      assert.ok(
        listing.historyTimelines.includes(Number(timeline)),
        "the new timeline's history file is kept",
      );
    } finally {
      await restoredServer.stop();
    }

    const second = path.join(restores, "second");
    const restored = await capsule(
      ["pg", "--restore", "--physical", "--cluster", cluster, "--target", target, "--to-data-dir", second],
      env,
    );
    assert.equal(restored.code, 0, restored.stderr);
    const rows = await withStartedCluster(source.binDir, second, async (c) =>
      (await query(c, "SELECT id FROM orders WHERE id >= 1000000 ORDER BY id")).map((r) => Number(r["id"])),
    );
    assert.deepEqual(rows, switchedRows, "the rows written on the new timeline are restored");
    switchedRows = [];
  });
});

/** The restored data directory as a running primary on TCP (its pg_hba is the source's: password over TCP). */
async function startRestored(
  binDir: string,
  dataDir: string,
): Promise<{ port: number; conn: PgConnection; stop(): Promise<void> }> {
  const account = postgresAccount();
  const ids = account ? { uid: account.uid, gid: account.gid } : {};
  const socketDir = await sharedDir("capsule-pitr-e2e-sock-");
  const port = await freePort();
  const options = `-p ${port} -k ${socketDir} -c listen_addresses=127.0.0.1 -c archive_mode=off`;
  await run(
    path.join(binDir, "pg_ctl"),
    ["start", "-w", "-D", dataDir, "-l", path.join(socketDir, "log"), "-o", options],
    { ...ids, timeoutMs: 120_000 },
  );
  return {
    port,
    conn: { host: "127.0.0.1", port, user: "postgres", password: PG_PASSWORD, database: "postgres" },
    stop: async () => {
      await run(path.join(binDir, "pg_ctl"), ["stop", "-w", "-D", dataDir, "-m", "fast"], ids);
      await rm(socketDir, { recursive: true, force: true });
    },
  };
}
