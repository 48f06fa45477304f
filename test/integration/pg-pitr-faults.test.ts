/**
 * Point-in-time restores under fault (#19): a real `capsule pg --restore --physical` process is sent SIGTERM or
 * SIGKILL while it extracts the base backup and while postgres replays WAL (failpoints hold it at each point), and
 * the file system is inspected: the data directory never exists half-written, SIGTERM removes the work directory,
 * SIGKILL leaves at most the clearly named work directory with no postgres running in it, and the next run works.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import { openBackupStore } from "../../src/runtime/bucket.js";
import { createBucket, s3Env, testServers, uniqueName } from "../harness/index.js";
import { startCapsule } from "../support/capsule-process.js";
import { capsule } from "../support/cli.js";
import {
  query,
  sharedDir,
  startArchivingPostgres,
  withStartedCluster,
  type ArchivingPostgres,
} from "../support/pitr.js";
import { shipWal } from "../support/wal-shipper.js";

const cluster = "pitrfaults";

/** Bounded wait for a condition on the real file system (no fixed sleeps in assertions). */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** PIDs of processes whose command line names `dir` (only postgres ones with `postgresOnly`). */
async function processesNaming(dir: string, postgresOnly = false): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    if (!cmdline.includes(dir)) continue;
    if (!postgresOnly || /postgres/.test(cmdline.split("\0")[0] ?? "")) pids.push(Number(entry));
  }
  return pids;
}

describe("capsule pg --restore --physical under fault", () => {
  let pg: ArchivingPostgres;
  let restores: string;
  let env: Record<string, string>;

  before(async () => {
    const servers = await testServers();
    pg = await startArchivingPostgres();
    restores = await sharedDir("capsule-pitr-faults-");
    const bucket = `s3://${uniqueName("pitrfaults")}/capsule`;
    await createBucket(servers.s3, new URL(bucket).host);
    env = { ...pg.env, ...s3Env(servers.s3), CAPSULE_BUCKET: bucket };
    await query(pg.conn, "CREATE TABLE t (k int PRIMARY KEY, s text)");
    await query(pg.conn, "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 200000) g");
    const created = await capsule(
      ["pg", "--create", "--physical", "--cluster", cluster, "--target", "app"],
      env,
    );
    assert.equal(created.code, 0, created.stderr);
    // WAL after the base backup, so replay has segments to fetch from the bucket.
    await query(pg.conn, "UPDATE t SET s = s || 'x'");
    const store = openBackupStore({ bucket }, env);
    await shipWal(pg.conn, pg.archiveDir, store.walArchive(cluster, "app"));
  });

  after(async () => {
    await pg?.server.stop();
  });

  const points = [
    ["extraction", "physical-restore-extracting"],
    ["replay", "physical-restore-replaying"],
  ] as const;

  for (const [during, point] of points) {
    for (const signal of ["SIGTERM", "SIGKILL"] as const) {
      test(`${signal} during ${during} leaves no data directory, and the next run restores`, async () => {
        const dir = path.join(restores, `${during}-${signal}`);
        const args = [
          "pg",
          "--restore",
          "--physical",
          "--cluster",
          cluster,
          "--target",
          "app",
          "--to-data-dir",
          dir,
        ];
        const proc = startCapsule(args, env, { failpoints: [point] });
        await proc.waitForStderr(new RegExp(`failpoint ${point} reached`));
        const work = (await readdir(restores)).filter((n) =>
          n.startsWith(`${path.basename(dir)}.capsule-restoring-`),
        );
        assert.equal(work.length, 1, "the restore works in one clearly named directory beside DIR");
        proc.signal(signal);
        const exit = await proc.exited;
        if (signal === "SIGTERM") {
          assert.equal(exit.code, 143, proc.stderr());
          assert.match(proc.stderr(), /was not created; the partial restore in .* was removed/);
        } else {
          assert.equal(exit.signal, "SIGKILL");
        }
        assert.equal(existsSync(dir), false, "no half-written data directory");
        const workDir = path.join(restores, work[0]!);
        // The server's guard stops postgres when capsule dies, however it dies.
        await until(
          "postgres of the killed restore to stop",
          async () => (await processesNaming(workDir, true)).length === 0,
        );
        // And the guard to finish emptying the work directory, or the next run and the guard race over it (the
        // next run may find it and then not: whether it says "removing" would be chance).
        await until(
          "the killed restore's guard to finish",
          async () => (await processesNaming(workDir)).length === 0,
        );
        if (signal === "SIGTERM") assert.equal(existsSync(workDir), false);

        const leftBehind = existsSync(workDir);
        const again = await capsule(args, env);
        assert.equal(again.code, 0, again.stderr);
        if (leftBehind)
          assert.match(again.stderr, /removing .*capsule-restoring-.*, left by an interrupted restore/);
        if (signal === "SIGKILL" && existsSync(workDir)) assert.fail(`${workDir} survived the next run`);
        const rows = await withStartedCluster(pg.server.binDir, dir, async (conn) =>
          query<{ n: string; x: string }>(
            conn,
            "SELECT count(*)::text AS n, count(*) FILTER (WHERE s LIKE '%x')::text AS x FROM t",
          ),
        );
        assert.deepEqual(rows, [{ n: "200000", x: "200000" }]);
        assert.deepEqual(
          (await readdir(restores)).filter((n) => n.startsWith(`${path.basename(dir)}.capsule-restoring-`)),
          [],
          "no work directory is left after a clean run",
        );
      });
    }
  }
});
