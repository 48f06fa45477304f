/**
 * Retention can never leave nothing restorable (issue 16 item 6), end to end against the harness' real PostgreSQL
 * and radosgw: a corrupt, failed-verification backup never fills a keep slot; a damaged artifact (what `--check`
 * finds) is left for an operator and not counted; `--prune` without flags uses the plan's retention or refuses.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { openBackupStore } from "../../src/runtime/bucket.js";
import type { BackupStore } from "../../src/storage/backup-store.js";
import { layout } from "../../src/storage/layout.js";
import { deletePlanned, planStoredRetention } from "../../src/storage/retention.js";
import { serializeStatefile } from "../../src/storage/statefile.js";
import { type Statefile } from "../../src/domain/statefile.js";
import { compileManifests } from "../../src/compiler/compile.js";
import { scan } from "../../src/scanner/scan.js";
import { cnvrgApp, cnvrgStorageSecret } from "../fakes/cnvrgapps.js";
import { FakeKubeApiServer } from "../fakes/kube-apiserver.js";
import { createBucket, s3Env, testServers, uniqueName, type TestServers } from "../harness/index.js";
import { capsule } from "../support/cli.js";
import { statefile } from "../support/entries.js";
import { pgEnv, sql } from "../support/pg.js";
import { writeHarnessPlan } from "../support/plan.js";
import { objectsOf, prefixOf } from "../support/raw-bucket.js";

async function putBackup(store: BackupStore, s: Statefile, bytes = "0123456789"): Promise<void> {
  if (s.artifact) await objectsOf(store).put(layout.artifactKey(prefixOf(store), s, s.artifact.name), bytes);
  await objectsOf(store).put(layout.statefileKey(prefixOf(store), s), serializeStatefile(s));
}

describe("capsule <engine> --prune never leaves nothing restorable", () => {
  let servers: TestServers;
  let bucket: string;
  let env: Record<string, string>;
  let store: BackupStore;

  before(async () => {
    servers = await testServers();
    bucket = uniqueName("retain");
    await createBucket(servers.s3, bucket);
    env = { ...s3Env(servers.s3), CAPSULE_BUCKET: `s3://${bucket}/capsule` };
    store = openBackupStore({}, env);
  });

  test("GIVEN two verified backups and a newer one whose artifact is corrupt and whose verification failed WHEN --prune --keep-last 1 --yes THEN a verified backup survives and the corrupt one fills no slot", async () => {
    const db = uniqueName("rdb").replace(/-/g, "_");
    await sql(servers, "postgres", `CREATE DATABASE ${db}`);
    await sql(
      servers,
      db,
      "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 500);",
    );
    const e = { ...env, ...pgEnv(servers, db), CAPSULE_CLUSTER: "issue16" };
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const created = await capsule(["pg", "--create", "--target", "db"], e);
      assert.equal(created.code, 0, created.stderr);
      ids.push(created.stdout.trim());
    }
    const [older, newer, corrupt] = ids as [string, string, string];
    for (const id of [older, newer]) {
      const verified = await capsule(["pg", "--verify", "--verify-server", "--id", id], e);
      assert.equal(verified.code, 0, verified.stderr);
    }
    // The newest artifact's bytes go bad in the bucket, size unchanged: only a drill can tell.
    const entry = await store.get({ cluster: "issue16", engine: "postgresql", backupId: corrupt });
    const key = layout.artifactKey(prefixOf(store), entry.ref, entry.statefile!.artifact!.name);
    await objectsOf(store).put(key, Buffer.alloc(entry.statefile!.artifact!.sizeBytes, 0x5a));
    const drill = await capsule(["pg", "--verify", "--verify-server", "--id", corrupt], e);
    assert.notEqual(drill.code, 0, "the corrupt backup must fail its drill");
    const state = async (id: string) =>
      (await store.get({ cluster: "issue16", engine: "postgresql", backupId: id })).statefile!.verification
        .status;
    assert.deepEqual(await Promise.all(ids.map(state)), ["verified", "verified", "failed"]);

    const dry = await capsule(["pg", "--prune", "--target", "db", "--keep-last", "1", "--dry-run"], e);
    const pruned = await capsule(["pg", "--prune", "--target", "db", "--keep-last", "1", "--yes"], e);
    assert.equal(pruned.code, 0, pruned.stderr);
    // Column widths follow the words, so the two tables are compared word by word.
    const words = (out: string) => out.replace(/would delete/g, "deleted").split(/\s+/);
    assert.deepEqual(words(dry.stdout), words(pruned.stdout), "--dry-run shows the same decisions");

    const left = (await store.list({ cluster: "issue16", engine: "postgresql", target: "db" })).map(
      (x) => x.ref.backupId,
    );
    assert.ok(left.includes(newer), `the newest verified backup must survive; left: ${left.join(", ")}`);
    assert.ok(!left.includes(older), "the older verified one is beyond keepLast 1");
    assert.match(pruned.stdout, new RegExp(`${newer}.*succeeded \\(verified\\).*keep.*newest restorable`));
    assert.match(
      pruned.stdout,
      new RegExp(`${corrupt}.*succeeded \\(failed\\).*keep.*verification failed, within`),
    );
    assert.match(pruned.stdout, /db: keep-last 1, failed-grace-hours 72 \(from --keep-last\)/);

    // And the survivor restores.
    const restored = await capsule(
      ["pg", "--restore", "--id", newer, "--to-database", `${db}_back`, "--yes"],
      e,
    );
    assert.equal(restored.code, 0, restored.stderr);
    assert.deepEqual(await sql(servers, `${db}_back`, "SELECT count(*)::int AS n FROM t"), [{ n: 500 }]);
  });

  test("GIVEN the newest backup's artifact was truncated in the bucket WHEN --prune --keep-last 1 --yes THEN the older whole one is kept and the damaged one is left for an operator", async () => {
    const cluster = "damaged-newest";
    const whole = statefile({ cluster, target: "db", at: "2026-11-20T01:00:00.000Z" });
    const damaged = statefile({ cluster, target: "db", at: "2026-11-21T01:00:00.000Z" });
    await putBackup(store, whole);
    await putBackup(store, damaged, "short");

    const pruned = await capsule(
      ["pg", "--prune", "--target", "db", "--keep-last", "1", "--yes", "-o", "json"],
      {
        ...env,
        CAPSULE_CLUSTER: cluster,
      },
    );
    assert.equal(pruned.code, 0, pruned.stderr);
    const left = (await store.list({ cluster, engine: "postgresql" })).map((x) => x.ref.backupId).sort();
    assert.deepEqual(left, [whole.backupId, damaged.backupId].sort());
    const [result] = (
      JSON.parse(pruned.stdout) as {
        targets: Array<{ keep: Array<{ backupId: string; restorable: boolean; reason: string }> }>;
      }
    ).targets;
    const why = new Map(result!.keep.map((d) => [d.backupId, d]));
    assert.equal(why.get(whole.backupId)?.restorable, true);
    assert.match(
      why.get(damaged.backupId)?.reason ?? "",
      /damaged \(size-mismatch: .*\): left for an operator/,
    );
  });

  test("GIVEN no plan and no keep flag WHEN --prune THEN it refuses in one line naming the target and deletes nothing", async () => {
    const cluster = "no-policy";
    const backups = [1, 2, 3, 4, 5, 6, 7].map((d) =>
      statefile({ cluster, target: "db", at: `2026-11-0${d}T01:00:00.000Z` }),
    );
    for (const s of backups) await putBackup(store, s);
    const result = await capsule(["pg", "--prune", "--yes"], { ...env, CAPSULE_CLUSTER: cluster });
    assert.notEqual(result.code, 0);
    assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
    assert.match(result.stderr, /no retention policy for postgresql target db of cluster no-policy/);
    assert.match(result.stderr, /pass --plans PATH, or --keep-last N/);
    assert.equal((await store.list({ cluster, engine: "postgresql" })).length, 7);
  });

  test("GIVEN a plan keeping 1 and 3 monthly WHEN --prune --plans THEN the plan's policy applies, and --keep-last overrides only that field", async () => {
    const cluster = "planned.app";
    const at = ["2026-11-23", "2026-11-22", "2026-10-20", "2026-09-20", "2026-08-20"];
    const backups = at.map((d) => statefile({ cluster, target: "db", at: `${d}T01:00:00.000Z` }));
    for (const s of backups) await putBackup(store, s);
    const plans = await writeHarnessPlan(servers, {
      cluster,
      bucket,
      targets: `    - name: db
      engine: postgresql
      namespace: app
      connection: { host: postgres, database: app }
      schedule: { cron: "0 1 * * *" }
      retention: { keepLast: 1, keepMonthly: 3 }
`,
    });
    const e = { ...env, CAPSULE_CLUSTER: cluster };
    const wouldDelete = (stdout: string) =>
      backups
        .filter((s) => new RegExp(`${s.backupId}.*would delete`).test(stdout))
        .map((s) => s.backupId.slice(11, 19));

    const byPlan = await capsule(["pg", "--prune", "--plans", plans, "--dry-run"], e);
    assert.equal(byPlan.code, 0, byPlan.stderr);
    assert.match(byPlan.stdout, /db: keep-last 1, keep-monthly 3, failed-grace-hours 72 \(from plan /);
    assert.deepEqual(wouldDelete(byPlan.stdout), ["20261122", "20260820"]);

    const overridden = await capsule(["pg", "--prune", "--plans", plans, "--keep-last", "2", "--dry-run"], e);
    assert.equal(overridden.code, 0, overridden.stderr);
    assert.match(overridden.stdout, /db: keep-last 2, keep-monthly 3, .*\(from --keep-last over plan /);
    assert.deepEqual(wouldDelete(overridden.stdout), ["20260820"]);

    const otherCluster = await capsule(["pg", "--prune", "--target", "db", "--plans", plans, "--dry-run"], {
      ...env,
      CAPSULE_CLUSTER: "unplanned",
    });
    assert.notEqual(otherCluster.code, 0);
    assert.match(otherCluster.stderr, /no retention policy .* \(searched: --plans /);
  });

  test("GIVEN two verified backups and a newer one whose verification failed WHEN a scheduled run with keepLast 1 takes a backup THEN its retention keeps the newest verified one beside the new backup", async () => {
    const cluster = "scheduled";
    const db = uniqueName("sdb").replace(/-/g, "_");
    await sql(servers, "postgres", `CREATE DATABASE ${db}`);
    await sql(servers, db, "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100);");
    const verified = (at: string) =>
      statefile({ cluster, target: "db", at, verification: { status: "verified", at } });
    const older = verified("2026-11-20T01:00:00.000Z");
    const newer = verified("2026-11-21T01:00:00.000Z");
    const failed = statefile({
      cluster,
      target: "db",
      at: "2026-11-22T01:00:00.000Z",
      verification: { status: "failed", at: "2026-11-22T02:00:00.000Z", details: "sha256 mismatch" },
    });
    for (const s of [older, newer, failed]) await putBackup(store, s);
    const target = {
      version: 1,
      cluster,
      target: "db",
      engine: "postgresql",
      namespace: "apps",
      connection: { host: servers.pg.host, port: servers.pg.port, database: db },
      retention: { keepLast: 1 },
      storage: { prefix: "capsule" },
    };
    const run = await capsule(["run"], {
      ...env,
      CAPSULE_TARGET: JSON.stringify(target),
      PGUSER: servers.pg.user,
      PGPASSWORD: servers.pg.password,
    });
    assert.equal(run.code, 0, run.stderr);
    const taken = run.stdout.trim();
    const applied = run.stderr.split("\n").find((l) => l.includes('"msg":"retention applied"'));
    assert.match(applied ?? "", new RegExp(`"backupId":"${older.backupId}","reason":"beyond retention"`));

    const left = (await store.list({ cluster, engine: "postgresql", target: "db" })).map(
      (x) => x.ref.backupId,
    );
    // The failed verification is past its 72 h grace and a newer restorable backup now exists: it goes.
    assert.deepEqual(left.sort(), [taken, newer.backupId].sort());
  });

  test("GIVEN a plan made before the newest backup failed its drill WHEN it is carried out THEN the backup that became the newest restorable is spared", async () => {
    const scope = { cluster: "raced", engine: "postgresql" as const, target: "db" };
    const older = statefile({ cluster: scope.cluster, target: "db", at: "2026-11-20T01:00:00.000Z" });
    const newest = statefile({ cluster: scope.cluster, target: "db", at: "2026-11-21T01:00:00.000Z" });
    for (const s of [older, newest]) await putBackup(store, s);
    const shown = await planStoredRetention(store, scope, { keepLast: 1 });
    assert.deepEqual(
      shown.delete.map((d) => d.backupId),
      [older.backupId],
    );
    // While the operator reads the confirmation, the drill of the newest backup fails.
    await store.update({ ...scope, backupId: newest.backupId }, (s) => {
      s.verification = { status: "failed", at: new Date().toISOString() };
    });
    const { deleted, spared } = await deletePlanned(store, scope, { keepLast: 1 }, shown);
    assert.deepEqual(deleted, []);
    assert.deepEqual(spared, [older.backupId]);
    assert.equal((await store.list(scope)).length, 2);
  });

  describe("with a kube context and no --bucket", () => {
    let api: FakeKubeApiServer | undefined;
    after(() => api?.close());

    test("GIVEN a CnvrgApp whose rotation is 2 and the CronJob compiled from it WHEN --prune --dry-run without flags THEN the CronJob's retention applies", async () => {
      const app = cnvrgApp("ml", "cnvrg", { rotation: 2 });
      const cronJobs = compileManifests(scan([app]).plans);
      const fake = (api = await new FakeKubeApiServer().start());
      fake.put("cnvrgapps", app);
      fake.putSecret("ml", "cp-object-storage", cnvrgStorageSecret(servers.s3, bucket));
      for (const c of cronJobs)
        fake.put("cronjobs", JSON.parse(JSON.stringify(c)) as Record<string, unknown>);
      const cronJob = cronJobs[0]!.metadata;
      const backups = [20, 21, 22, 23].map((d) =>
        statefile({ cluster: "ml.cnvrg", target: "postgresql", at: `2026-11-${d}T01:00:00.000Z` }),
      );
      for (const s of backups) await putBackup(store, s);

      const laptop = { KUBECONFIG: await fake.kubeconfigFile(), HOME: "/nonexistent" };
      const result = await capsule(["pg", "--prune", "--dry-run"], laptop);
      assert.equal(result.code, 0, result.stderr);
      assert.match(
        result.stdout,
        new RegExp(`postgresql: keep-last 2, failed-grace-hours 72 \\(from CronJob ml/${cronJob.name}\\)`),
      );
      for (const [s, decision] of backups.map((s, i) => [s, i < 2 ? "would delete" : "keep"] as const))
        assert.match(result.stdout, new RegExp(`${s.backupId}.*${decision}`));
    });
  });
});
