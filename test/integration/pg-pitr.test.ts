/**
 * Point-in-time recovery of PostgreSQL against a real server (#19): a physical base backup, WAL in the bucket (put
 * there through WalArchive by test/support/wal-shipper.ts until the real streamer is merged), restores to a time,
 * to an LSN and to the end, refusals outside the window, and the physical verify drill.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import { openBackupStore } from "../../src/runtime/bucket.js";
import type { BackupStore } from "../../src/storage/backup-store.js";
import { createBucket, s3Env, testServers, uniqueName, type TestServers } from "../harness/index.js";
import { capsule } from "../support/cli.js";
import {
  query,
  sharedDir,
  startArchivingPostgres,
  withStartedCluster,
  type ArchivingPostgres,
} from "../support/pitr.js";
import { shipWal } from "../support/wal-shipper.js";

const cluster = "pitr";

for (const kind of ["file", "s3"] as const) {
  describe(`capsule pg point-in-time restore (${kind})`, () => {
    let servers: TestServers;
    let pg: ArchivingPostgres;
    let bucket: string;
    let restores: string;
    let env: Record<string, string>;
    let store: BackupStore;
    let backupId: string;
    /** Server time between the commits of rows b and c; the LSN between c and d. */
    let betweenBandC: string;
    let betweenCandD: string;
    let coveredUntil: string;
    let firstCommit: string;

    before(async () => {
      servers = await testServers();
      pg = await startArchivingPostgres();
      restores = await sharedDir("capsule-pitr-restores-");
      if (kind === "s3") {
        bucket = `s3://${uniqueName("pitr")}/capsule`;
        await createBucket(servers.s3, new URL(bucket).host);
      } else {
        bucket = `file://${await sharedDir("capsule-pitr-bucket-")}`;
      }
      env = { ...pg.env, ...s3Env(servers.s3), CAPSULE_BUCKET: bucket };
      store = openBackupStore({ bucket }, env);

      await query(pg.conn, "CREATE TABLE t (k text PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())");
      await query(pg.conn, "INSERT INTO t (k) VALUES ('a')");
      firstCommit = (
        await query<{ at: Date }>(pg.conn, "SELECT at FROM t WHERE k = 'a'")
      )[0]!.at.toISOString();
      const created = await capsule(
        ["pg", "--create", "--physical", "--cluster", cluster, "--target", "app"],
        env,
      );
      assert.equal(created.code, 0, created.stderr);
      backupId = created.stdout.trim();

      await query(pg.conn, "INSERT INTO t (k) VALUES ('b')");
      await sleep(20);
      betweenBandC = (
        await query<{ t: string }>(
          pg.conn,
          "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS t",
        )
      )[0]!.t;
      await sleep(20);
      await query(pg.conn, "INSERT INTO t (k) VALUES ('c')");
      betweenCandD = (
        await query<{ l: string }>(pg.conn, "SELECT pg_current_wal_insert_lsn()::text AS l")
      )[0]!.l;
      await query(pg.conn, "INSERT INTO t (k) VALUES ('d')");
      coveredUntil = (await shipWal(pg.conn, pg.archiveDir, store.walArchive(cluster, "app"))).coveredUntil;
    });

    after(async () => {
      await pg?.server.stop();
    });

    async function rowsOf(dataDir: string): Promise<{ rows: string[]; inRecovery: boolean }> {
      return withStartedCluster(pg.server.binDir, dataDir, async (conn) => ({
        rows: (await query<{ k: string }>(conn, "SELECT k FROM t ORDER BY k")).map((r) => r.k),
        inRecovery: (await query<{ r: boolean }>(conn, "SELECT pg_is_in_recovery() AS r"))[0]!.r,
      }));
    }

    test("--create --physical records kind and the backup's place in the WAL", async () => {
      const entry = await store.get({ cluster, engine: "postgresql", backupId });
      assert.equal(entry.state, "succeeded");
      assert.equal(entry.statefile?.kind, "physical");
      const physical = entry.statefile.physical;
      assert.ok(physical);
      const system = (
        await query<{ s: string }>(pg.conn, "SELECT system_identifier::text AS s FROM pg_control_system()")
      )[0]!.s;
      assert.equal(physical.systemIdentifier, system);
      assert.equal(physical.timeline, 1);
      assert.equal(physical.walSegmentSize, 16 * 1024 * 1024);
      assert.equal(physical.manifest, "backup_manifest");
      assert.ok(Date.parse(physical.endTime) > Date.parse(firstCommit));
      assert.match(physical.startLsn, /^[0-9A-F]+\/[0-9A-F]+$/);
      const listed = await capsule(["pg", "--list", "--cluster", cluster], env);
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, /physical/);
      const described = await capsule(
        ["pg", "--describe", "--cluster", cluster, "--id", backupId, "-o", "json"],
        env,
      );
      assert.equal(described.code, 0, described.stderr);
      const window = (
        JSON.parse(described.stdout) as { recoveryWindow: { earliest: { backupId: string; time: string } } }
      ).recoveryWindow;
      assert.equal(window.earliest.backupId, backupId);
      assert.equal(window.earliest.time, physical.endTime);
      assert.match(
        listed.stdout,
        new RegExp(`window of app: earliest ${physical.endTime.replace(/\./g, "\\.")}`),
      );
    });

    test("a restore to a time holds every row committed before it and none after", async () => {
      const dir = path.join(restores, `time-${kind}`);
      const r = await capsule(
        [
          "pg",
          "--restore",
          "--physical",
          "--cluster",
          cluster,
          "--target",
          "app",
          "--to-data-dir",
          dir,
          "--target-time",
          betweenBandC,
        ],
        env,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`restored ${backupId} plus WAL`));
      assert.match(r.stderr, /pg_ctl start -D/);
      const { rows, inRecovery } = await rowsOf(dir);
      assert.deepEqual(rows, ["a", "b"]);
      assert.equal(inRecovery, false);
      assert.deepEqual(
        (await readdir(restores)).filter((n) => n.includes("capsule-restoring")),
        [],
      );
    });

    test("a restore to an LSN holds the WAL before it and nothing after", async () => {
      const dir = path.join(restores, `lsn-${kind}`);
      const r = await capsule(
        [
          "pg",
          "--restore",
          "--physical",
          "--cluster",
          cluster,
          "--to-data-dir",
          dir,
          "--target-lsn",
          betweenCandD,
        ],
        env,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual((await rowsOf(dir)).rows, ["a", "b", "c"]);
    });

    test("without a target every committed row in the bucket is restored, and it starts as a primary", async () => {
      const dir = path.join(restores, `latest-${kind}`);
      await mkdir(dir, { mode: 0o755 });
      const r = await capsule(
        ["pg", "--restore", "--physical", "--cluster", cluster, "--to-data-dir", dir],
        env,
      );
      assert.equal(r.code, 0, r.stderr);
      const { rows, inRecovery } = await rowsOf(dir);
      assert.deepEqual(rows, ["a", "b", "c", "d"]);
      assert.equal(inRecovery, false);
      const entry = await store.get({ cluster, engine: "postgresql", backupId });
      assert.equal(entry.statefile?.restores.at(-1)?.result, "succeeded");
    });

    test("a target inside the window but after the last commit recovers to the end and says so", async () => {
      const dir = path.join(restores, `end-${kind}`);
      const r = await capsule(
        [
          "pg",
          "--restore",
          "--physical",
          "--cluster",
          cluster,
          "--to-data-dir",
          dir,
          "--target-time",
          coveredUntil,
        ],
        env,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stderr,
        /after the last transaction in the WAL: recovering to the end of the WAL instead/,
      );
      assert.deepEqual((await rowsOf(dir)).rows, ["a", "b", "c", "d"]);
    });

    test("targets before the oldest base backup or past the last WAL are refused with the window, nothing written", async () => {
      for (const [flag, value] of [
        ["--target-time", "2001-01-01T00:00:00Z"],
        ["--target-time", new Date(Date.now() + 3_600_000).toISOString()],
        ["--target-lsn", "FF/0"],
      ] as const) {
        const dir = path.join(restores, `refused-${kind}`);
        const r = await capsule(
          ["pg", "--restore", "--physical", "--cluster", cluster, "--to-data-dir", dir, flag, value],
          env,
        );
        assert.notEqual(r.code, 0);
        const lines = r.stderr.trim().split("\n");
        assert.equal(lines.length, 1, r.stderr);
        assert.match(lines[0]!, new RegExp(`${flag} ${value.replace(/[.+]/g, "\\$&")} is outside`));
        assert.match(lines[0]!, /earliest .* latest /);
        assert.equal(existsSync(dir), false);
      }
      assert.deepEqual(
        (await readdir(restores)).filter((n) => n.startsWith("refused")),
        [],
      );
    });

    test("a non-empty data directory is refused and left as it was", async () => {
      const dir = path.join(restores, `busy-${kind}`);
      await mkdir(dir);
      await writeFile(path.join(dir, "keep"), "mine");
      const r = await capsule(
        ["pg", "--restore", "--physical", "--cluster", cluster, "--to-data-dir", dir],
        env,
      );
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /--to-data-dir .* is not empty/);
      assert.deepEqual(await readdir(dir), ["keep"]);
    });

    test("the base backup alone (no WAL in the bucket) restores to its end point", async () => {
      await query(pg.conn, "INSERT INTO t (k) VALUES ('solo-before')");
      const created = await capsule(
        ["pg", "--create", "--physical", "--cluster", cluster, "--target", "solo"],
        env,
      );
      assert.equal(created.code, 0, created.stderr);
      await query(pg.conn, "INSERT INTO t (k) VALUES ('solo-after')");
      const dir = path.join(restores, `solo-${kind}`);
      const r = await capsule(
        ["pg", "--restore", "--physical", "--cluster", cluster, "--target", "solo", "--to-data-dir", dir],
        env,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /restoring to the end of the base backup/);
      const { rows } = await rowsOf(dir);
      assert.ok(rows.includes("solo-before"));
      assert.ok(!rows.includes("solo-after"));
    });

    test("capsule run --physical backs up CAPSULE_TARGET's server, and run --restore latest --physical restores it", async () => {
      const runEnv = {
        ...env,
        CAPSULE_TARGET: JSON.stringify({
          version: 1,
          cluster,
          target: "runapp",
          engine: "postgresql",
          namespace: "apps",
          connection: { host: pg.server.host, port: pg.server.port, database: "postgres" },
          retention: { keepLast: 5 },
          storage: { prefix: "capsule" },
        }),
      };
      const backedUp = await capsule(
        ["run", "--physical", "--cluster", cluster, "--target", "runapp"],
        runEnv,
      );
      assert.equal(backedUp.code, 0, backedUp.stderr);
      const id = backedUp.stdout.trim();
      const entry = await store.get({ cluster, engine: "postgresql", backupId: id });
      assert.equal(entry.statefile?.kind, "physical");
      assert.equal(entry.statefile?.target, "runapp");
      const dir = path.join(restores, `run-${kind}`);
      const restored = await capsule(
        [
          "run",
          "--cluster",
          cluster,
          "--target",
          "runapp",
          "--restore",
          "latest",
          "--physical",
          "--to-data-dir",
          dir,
        ],
        runEnv,
      );
      assert.equal(restored.code, 0, restored.stderr);
      assert.match(restored.stdout, new RegExp(`restored ${id} plus WAL`));
      assert.ok((await rowsOf(dir)).rows.includes("d"));
    });

    test("the physical verify drill records verified and leaves no throwaway cluster", async () => {
      const r = await capsule(["pg", "--verify", "--cluster", cluster, "--id", backupId], env);
      assert.equal(r.code, 0, r.stderr);
      const entry = await store.get({ cluster, engine: "postgresql", backupId });
      assert.equal(entry.statefile?.verification.status, "verified");
      assert.match(entry.statefile?.verification.details ?? "", /started as a primary and answered/);
      const left = (await readdir(tmpdir())).filter((n) => n.startsWith("capsule-verify-pgpitr-"));
      assert.deepEqual(left, []);
    });
  });
}
