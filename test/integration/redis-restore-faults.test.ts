/**
 * Issue 16 item 4 and item 3 (Redis): a real `capsule redis --restore` child process against a real, dedicated
 * redis-server, stopped by SIGINT, SIGTERM or SIGKILL at an exact phase (failpoints, src/util/failpoint.ts):
 * mid-transfer (part of the RDB is on the target, the rest is not) and after the target loaded the whole backup.
 * Afterwards the target must be a writable master (or, after SIGKILL, named by the next command and put back by
 * --recover) with exactly its old keys or exactly the backup's, its replication settings as before, and the
 * interruption recorded in the statefile. Also the restore drill: an interrupted `--verify` leaves no server, no
 * directory and no verification verdict.
 */
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { compileManifests } from "../../src/compiler/compile.js";
import { gatherPlans } from "../../src/runtime/gather-plans.js";
import { openBackupStore } from "../../src/runtime/bucket.js";
import { resolveContainerEnv, type EnvVar } from "../fakes/pod-env.js";
import { createBucket, s3Env, testServers, uniqueName, type TestServers } from "../harness/index.js";
import { planS3Secret, writeHarnessPlan } from "../support/plan.js";
import type { RedisServer } from "../harness/redis.js";
import { capsule } from "../support/cli.js";
import { startCapsule } from "../support/capsule-process.js";
import { call, redisEnv, startTargetRedis, text, type RedisEndpoint } from "../support/redis.js";
import type { Statefile } from "../../src/domain/statefile.js";

/** The keys the target holds before any restore: what an interrupted restore must leave intact. */
const OWN_KEYS = 3000;
/** The backup: large enough that its RDB reaches the target in many chunks. */
const BACKUP_KEYS = 20_000;
/** A capsule that never puts the target back must fail its test, not hang the suite. */
const BOUNDED = { timeout: 180_000 };

describe("capsule redis --restore under SIGINT, SIGTERM and SIGKILL", () => {
  let servers: TestServers;
  let bucket: string;
  let backupId: string;
  const cluster = "faults";
  const started: RedisServer[] = [];

  function env(server: RedisEndpoint, extra: Record<string, string> = {}): Record<string, string> {
    return { ...s3Env(servers.s3), ...redisEnv(server), CAPSULE_BUCKET: bucket, ...extra };
  }

  async function server(config: Record<string, string> = {}): Promise<RedisServer> {
    const s = await startTargetRedis(config);
    started.push(s);
    return s;
  }

  /** A target with its own keys and non-default replication settings, as production has them. */
  async function target(config: Record<string, string> = {}): Promise<RedisServer> {
    const s = await server(config);
    await call(
      s,
      "EVAL",
      `for i = 1, ${OWN_KEYS} do redis.call('SET', 'own:' .. i, 'own-value-' .. i) end`,
      "0",
    );
    await call(s, "CONFIG", "SET", "masteruser", "replicator");
    return s;
  }

  async function settings(s: RedisEndpoint): Promise<Record<string, string>> {
    const get = async (name: string) => {
      const reply = (await call(s, "CONFIG", "GET", name)) as Buffer[];
      return String(reply[1] ?? "");
    };
    return { masterauth: await get("masterauth"), masteruser: await get("masteruser") };
  }

  async function role(s: RedisEndpoint): Promise<string> {
    return /role:(\w+)/.exec(await text(s, "INFO", "replication"))?.[1] ?? "";
  }

  /** The target holds exactly its own keys, accepts writes, and is a master with the settings it had. */
  async function assertOwnDataAndWritable(s: RedisEndpoint, before: Record<string, string>): Promise<void> {
    assert.equal(await role(s), "master");
    assert.equal(await call(s, "DBSIZE"), OWN_KEYS);
    for (const i of [1, 1500, OWN_KEYS]) assert.equal(await text(s, "GET", `own:${i}`), `own-value-${i}`);
    assert.equal(await call(s, "EXISTS", "backup:1"), 0);
    assert.equal(await text(s, "SET", "written-after", "yes"), "OK");
    assert.equal(await call(s, "DEL", "written-after"), 1);
    assert.deepEqual(await settings(s), before);
  }

  async function restores(): Promise<Statefile["restores"]> {
    const r = await capsule(
      ["redis", "--describe", "--id", backupId, "--cluster", cluster, "-o", "json"],
      env(servers.redis),
    );
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as Statefile).restores;
  }

  function restoreArgs(): string[] {
    return ["redis", "--restore", "--yes", "--id", backupId, "--cluster", cluster];
  }

  before(async () => {
    servers = await testServers();
    bucket = `s3://${uniqueName("redisfaults")}/capsule`;
    await createBucket(servers.s3, new URL(bucket).host);
    const source = await server();
    await call(
      source,
      "EVAL",
      `for i = 1, ${BACKUP_KEYS} do redis.call('SET', 'backup:' .. i, string.rep('b', 100) .. i) end`,
      "0",
    );
    const r = await capsule(["redis", "--create", "--cluster", cluster], env(source));
    assert.equal(r.code, 0, r.stderr);
    backupId = r.stdout.trim();
  });

  after(async () => {
    await Promise.allSettled(started.map((s) => s.stop()));
  });

  for (const { signal, code, load } of [
    { signal: "SIGINT", code: 130, load: "disabled" },
    { signal: "SIGTERM", code: 143, load: "swapdb" },
  ] as const) {
    test(
      `GIVEN a restore mid-transfer into a server with repl-diskless-load ${load} WHEN capsule gets ${signal} THEN the server is a writable master with its own keys and replication settings, capsule exits ${code} saying so, and restores[] records the interruption`,
      BOUNDED,
      async () => {
        const t = await target({ "repl-diskless-load": load });
        const before = await settings(t);
        const count = (await restores()).length;
        const child = startCapsule(restoreArgs(), env(t), { failpoints: ["redis-restore-mid-transfer"] });
        await child.waitForStderr(/failpoint redis-restore-mid-transfer reached/);
        if (load === "disabled") {
          // Mid-transfer for real: the target follows capsule and is receiving the RDB into a temp file.
          const replication = await text(t, "INFO", "replication");
          assert.match(replication, /role:slave/);
          assert.match(replication, /master_sync_in_progress:1/);
          // A restore in progress is not a leftover: --recover leaves it alone.
          const busy = await capsule(["redis", "--recover"], env(t));
          assert.equal(busy.code, 1, busy.stderr);
          assert.match(
            busy.stderr,
            /is receiving a capsule restore from 127\.0\.0\.1:\d+: wait until it ends/,
          );
        } // (swapdb: the target is blocked reading the RDB from the socket into its second keyspace; it answers nothing)
        child.signal(signal);
        const exit = await child.exited;
        assert.equal(exit.code, code, child.stderr());
        const last = child.stderr().trim().split("\n").at(-1)!;
        assert.match(
          last,
          new RegExp(
            `^capsule: CAPSULE_INTERRUPTED: interrupted by ${signal}: redis://127\\.0\\.0\\.1:${t.port} is a master again .*holds its own data`,
          ),
        );
        await assertOwnDataAndWritable(t, before);
        // The server's own account: it was loading the backup when the transfer was cut, and dropped what it had.
        const log = await readFile(t.logFile, "utf8");
        if (load === "disabled") {
          assert.match(log, /receiving \d+ bytes from master to disk/);
          assert.match(log, /I\/O error trying to sync with MASTER: connection lost/);
        } else {
          assert.match(log, /Loading DB in memory/);
          assert.match(log, /Discarding temporary DB/);
        }
        const recorded = await restores();
        assert.equal(recorded.length, count + 1);
        assert.equal(recorded.at(-1)?.result, "interrupted");
        assert.match(recorded.at(-1)?.message ?? "", new RegExp(`interrupted by ${signal}`));
      },
    );
  }

  test(
    "GIVEN a target that has loaded the whole backup WHEN capsule gets SIGTERM before detaching it THEN it is a writable master holding exactly the backup's keys, and the line says so",
    BOUNDED,
    async () => {
      const t = await target();
      const before = await settings(t);
      const child = startCapsule(restoreArgs(), env(t), { failpoints: ["redis-restore-before-detach"] });
      await child.waitForStderr(/failpoint redis-restore-before-detach reached/);
      child.signal("SIGTERM");
      const exit = await child.exited;
      assert.equal(exit.code, 143, child.stderr());
      assert.match(child.stderr().trim().split("\n").at(-1)!, /is a master again .*holds the backup's data/);
      assert.equal(await role(t), "master");
      assert.equal(await call(t, "DBSIZE"), BACKUP_KEYS);
      assert.equal(await call(t, "EXISTS", "own:1"), 0);
      assert.equal(await text(t, "SET", "written-after", "yes"), "OK");
      assert.deepEqual(await settings(t), before);
    },
  );

  test(
    "GIVEN a restore killed (SIGKILL) mid-transfer WHEN the next capsule redis command runs against the server THEN it names the dead listener and the --recover command, and --recover makes it a writable master with its own keys and settings",
    BOUNDED,
    async () => {
      const t = await target();
      await call(t, "CONFIG", "SET", "masterauth", "original-repl-secret-9");
      const before = await settings(t);
      const child = startCapsule(restoreArgs(), env(t), { failpoints: ["redis-restore-mid-transfer"] });
      await child.waitForStderr(/failpoint redis-restore-mid-transfer reached/);
      child.signal("SIGKILL");
      await child.exited;
      // What the kill left: a read-only replica of a listener that is gone.
      assert.equal(await role(t), "slave");
      await assert.rejects(call(t, "SET", "x", "y"), /READONLY/);

      const recover = `capsule redis --recover --host 127.0.0.1 --port ${t.port}`;
      for (const args of [["redis", "--create", "--cluster", cluster], restoreArgs()]) {
        const r = await capsule(args, env(t));
        assert.equal(r.code, 1, r.stderr);
        const lines = r.stderr.trim().split("\n");
        assert.match(
          lines.at(-1)!,
          new RegExp(
            `read-only replica of capsule's listener at 127\\.0\\.0\\.1:\\d+ by a restore that was killed .*run "${recover}"`,
          ),
        );
        assert.doesNotMatch(r.stderr, /original-repl-secret-9/);
      }

      const mixed = await capsule(["redis", "--recover", "--restore"], env(t));
      assert.equal(mixed.code, 2, mixed.stderr);
      assert.match(mixed.stderr, /^capsule: CAPSULE_USAGE: choose exactly one of .*--restore.*--recover/);
      const stray = await capsule(["redis", "--recover", "--dry-run"], env(t));
      assert.equal(stray.code, 2, stray.stderr);
      assert.match(stray.stderr, /--dry-run does not apply to --recover/);
      assert.equal(await role(t), "slave", "a refused command changes nothing");

      const r = await capsule(["redis", "--recover"], env(t));
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /recovered redis:\/\/127\.0\.0\.1:\d+: a master again .*holds its own data/);
      await assertOwnDataAndWritable(t, before);
      // Nothing is left to recover, and the server can be restored again.
      const again = await capsule(["redis", "--recover"], env(t));
      assert.equal(again.code, 1);
      assert.match(again.stderr, /carries no mark of an interrupted capsule restore/);
      const restored = await capsule(restoreArgs(), env(t));
      assert.equal(restored.code, 0, restored.stderr);
      assert.equal(await call(t, "DBSIZE"), BACKUP_KEYS);
    },
  );

  test(
    "GIVEN a restore killed (SIGKILL) after the target loaded the whole backup WHEN --recover runs THEN it is a writable master and the line says it holds the backup's data",
    BOUNDED,
    async () => {
      const t = await target();
      const before = await settings(t);
      const child = startCapsule(restoreArgs(), env(t), { failpoints: ["redis-restore-before-detach"] });
      await child.waitForStderr(/failpoint redis-restore-before-detach reached/);
      child.signal("SIGKILL");
      await child.exited;
      const r = await capsule(["redis", "--recover"], env(t));
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /a master again .*holds the backup's data/);
      assert.equal(await role(t), "master");
      assert.equal(await call(t, "DBSIZE"), BACKUP_KEYS);
      assert.equal(await text(t, "SET", "written-after", "yes"), "OK");
      assert.deepEqual(await settings(t), before);
    },
  );

  test(
    "GIVEN a restore drill (--verify) mid-transfer WHEN capsule gets SIGINT THEN it exits 130, its throwaway redis-server is gone with its directory, and no verification is recorded",
    BOUNDED,
    async () => {
      const scratch = await mkdtemp(path.join(tmpdir(), "capsule-faults-tmp-"));
      try {
        const child = startCapsule(
          ["redis", "--verify", "--id", backupId, "--cluster", cluster],
          { ...env(servers.redis), TMPDIR: scratch },
          { failpoints: ["redis-restore-mid-transfer"] },
        );
        await child.waitForStderr(/failpoint redis-restore-mid-transfer reached/);
        const port = Number(/serving the backup to redis:\/\/127\.0\.0\.1:(\d+)/.exec(child.stderr())?.[1]);
        assert.ok(port > 0, child.stderr());
        const drillDirs = async () => (await readdir(scratch)).filter((d) => d.startsWith("capsule-"));
        assert.equal((await drillDirs()).length, 1, "the drill's directory exists while it runs");
        child.signal("SIGINT");
        const exit = await child.exited;
        assert.equal(exit.code, 130, child.stderr());
        assert.match(
          child.stderr().trim().split("\n").at(-1)!,
          /^capsule: CAPSULE_INTERRUPTED: interrupted by SIGINT: the restore drill stopped; its throwaway redis-server is stopped/,
        );
        assert.deepEqual(await drillDirs(), []);
        assert.equal(await accepts(port), false, "the throwaway redis-server still listens");
        const r = await capsule(
          ["redis", "--describe", "--id", backupId, "--cluster", cluster, "-o", "json"],
          env(servers.redis),
        );
        assert.deepEqual((JSON.parse(r.stdout) as Statefile).verification, { status: "unverified" });
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    },
  );

  test(
    "GIVEN `capsule run --restore` in a pod WHEN it gets SIGTERM mid-transfer (a deleted Job, a drained node) THEN the target is a writable master with its own keys, the run exits 143 and restores[] records the interruption",
    BOUNDED,
    async () => {
      const t = await target();
      const before = await settings(t);
      const runBucket = uniqueName("redisfaultsrun");
      await createBucket(servers.s3, runBucket);
      const dir = await writeHarnessPlan(servers, {
        cluster: "faults.run",
        bucket: runBucket,
        targets: `    - name: cache
      engine: redis
      namespace: apps
      connection: { host: ${t.host}, port: ${t.port} }
      credentials: { secretName: redis-creds }
      schedule: { period: 6h }
      retention: { keepLast: 3 }
`,
      });
      const secrets: Record<string, Record<string, string>> = {
        "backup-s3": planS3Secret(servers),
        "redis-creds": { CNVRG_REDIS_PASSWORD: "" },
      };
      const { plans } = await gatherPlans({ plans: dir });
      const cronJob = compileManifests(plans).find(
        (c) => c.metadata.labels["capsule.cnvrg.io/job"] !== "verify",
      )!;
      const container = cronJob.spec.jobTemplate.spec!.template.spec!.containers[0]!;
      const podEnv = resolveContainerEnv(container.env as EnvVar[], (name) => secrets[name]);
      const args = container.args as string[];
      // The backup is of the target itself: its own keys, so restoring it must not be confused with keeping them.
      await call(t, "SET", "only-in-backup", "x".repeat(2_000_000)); // many chunks of RDB
      const backup = await capsule(args, podEnv);
      assert.equal(backup.code, 0, backup.stderr);
      const id = backup.stdout.trim();
      await call(t, "DEL", "only-in-backup");

      const child = startCapsule([...args, "--restore", id], podEnv, {
        failpoints: ["redis-restore-mid-transfer"],
      });
      await child.waitForStderr(/failpoint redis-restore-mid-transfer reached/);
      child.signal("SIGTERM");
      const exit = await child.exited;
      assert.equal(exit.code, 143, child.stderr());
      assert.match(
        child.stderr().trim().split("\n").at(-1)!,
        /^capsule: CAPSULE_INTERRUPTED: interrupted by SIGTERM: .*holds its own data/,
      );
      await assertOwnDataAndWritable(t, before);
      const store = openBackupStore(
        { bucket: `s3://${runBucket}/capsule` },
        { ...podEnv, AWS_ENDPOINT_URL_S3: servers.s3.endpoint },
      );
      const entry = await store.get({ cluster: "faults.run", engine: "redis", backupId: id });
      assert.equal(entry.statefile?.restores.at(-1)?.result, "interrupted");
    },
  );
});

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
