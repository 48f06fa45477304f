/**
 * Point-in-time recovery in the plan, the scanner and the compiler: `pitr: true` on a PostgreSQL target compiles to
 * a one-replica Recreate Deployment running `capsule run --stream-wal` with exactly the backup CronJob's pod, plus a
 * base-backup CronJob running `capsule run --physical`; other targets compile as before; a pitr on another engine,
 * or a base-backup schedule without pitr, is one clear line.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import yaml from "js-yaml";
import { CronJob } from "kubernetes-models/batch/v1/CronJob";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { compile, compileDeployments, compileManifests } from "../../src/compiler/compile.js";
import { LABELS } from "../../src/compiler/cronjob.js";
import { parsePlans } from "../../src/plan/load.js";
import { mergePlans } from "../../src/plan/merge.js";
import { PlanError } from "../../src/plan/plan-error.js";
import { scan } from "../../src/scanner/scan.js";
import { formatSkipped } from "../../src/scanner/fields.js";
import { cnvrgApp } from "../fakes/cnvrgapps.js";

function planText(targets: Array<Record<string, unknown>>, storage: Record<string, unknown> = {}): string {
  return yaml.dump({
    apiVersion: "capsule.cnvrg.io/v1",
    kind: "BackupPlan",
    metadata: { cluster: "ns.app" },
    spec: {
      storage: {
        bucket: "backups",
        endpoint: "http://s3.example:9000",
        credentialsSecretRef: { secretName: "bucket-creds" },
        ...storage,
      },
      targets,
    },
  });
}

const pg = (extra: Record<string, unknown> = {}) => ({
  name: "pg",
  engine: "postgresql",
  namespace: "ns",
  connection: { host: "postgres", database: "app" },
  ...extra,
});
const redis = { name: "cache", engine: "redis", namespace: "ns", connection: { host: "redis" } };

function plansOf(text: string) {
  return mergePlans([], parsePlans(text, "plans/pitr.yaml"));
}

function problemsOf(text: string): string[] {
  try {
    plansOf(text);
  } catch (error) {
    if (error instanceof PlanError) return [...error.problems];
    throw error;
  }
  return [];
}

describe("pitr: plan and compiler", () => {
  test("GIVEN a pg target with pitr: true WHEN compiled THEN a valid one-replica Recreate Deployment streams WAL with the backup CronJob's pod", () => {
    const plans = plansOf(planText([pg({ pitr: true }), redis]));
    const [deployment, ...others] = compileDeployments(plans);
    assert.ok(deployment);
    assert.equal(others.length, 0, "only the pitr target streams");
    new Deployment(deployment as never).validate();
    assert.equal(deployment.metadata.name, "capsule-ns-app-pg-wal");
    assert.equal(deployment.metadata.labels[LABELS.job], "wal-streamer");
    assert.equal(deployment.metadata.labels[LABELS.managedBy], "capsule");
    assert.equal(deployment.spec!.replicas, 1);
    assert.deepEqual(deployment.spec!.strategy, { type: "Recreate" });
    const selector = deployment.spec!.selector.matchLabels!;
    for (const [k, v] of Object.entries(selector))
      assert.equal(deployment.spec!.template.metadata!.labels![k], v, "the selector matches the pod");

    const backup = compileManifests(plans).find((c) => c.metadata.name === "capsule-ns-app-pg")!;
    const cronPod = backup.spec.jobTemplate.spec!.template.spec!;
    const pod = deployment.spec!.template.spec!;
    const [streamer] = pod.containers;
    const [dumper] = cronPod.containers;
    assert.deepEqual(streamer!.args, ["run", "--cluster", "ns.app", "--target", "pg", "--stream-wal"]);
    // Reused, not copied: the same env, secret references, volumes, lockdown and image.
    assert.deepEqual(streamer!.env, dumper!.env);
    assert.deepEqual(streamer!.volumeMounts, dumper!.volumeMounts);
    assert.deepEqual(streamer!.securityContext, dumper!.securityContext);
    assert.equal(streamer!.image, dumper!.image);
    assert.deepEqual(pod.volumes, cronPod.volumes);
    assert.deepEqual(pod.securityContext, cronPod.securityContext);
    assert.equal(pod.automountServiceAccountToken, false);
    assert.equal(pod.restartPolicy, "Always");
    assert.ok(streamer!.livenessProbe?.exec, "a probe for a long runner");
    assert.ok(
      streamer!.env!.some(
        (e) => e.name === "AWS_SECRET_ACCESS_KEY" && e.valueFrom?.secretKeyRef?.name === "bucket-creds",
      ),
    );
  });

  test("GIVEN pitr WHEN compiled THEN a base-backup CronJob runs capsule run --physical daily beside the logical one", () => {
    const plans = plansOf(planText([pg({ pitr: true })]));
    const cronJobs = compileManifests(plans);
    assert.deepEqual(
      cronJobs.map((c) => c.metadata.name),
      ["capsule-ns-app-pg", "capsule-ns-app-pg-base"],
    );
    const base = cronJobs[1]!;
    new CronJob(base as never).validate();
    assert.equal(base.metadata.labels[LABELS.job], "base-backup");
    assert.deepEqual(base.spec.jobTemplate.spec!.template.spec!.containers[0]!.args, [
      "run",
      "--cluster",
      "ns.app",
      "--target",
      "pg",
      "--physical",
    ]);
    assert.match(base.spec.schedule, /^\d+ \d+ \* \* \*$/, "daily by default");
    assert.notEqual(base.spec.schedule, cronJobs[0]!.spec.schedule, "spread apart from the logical dump");
    const yamlText = compile(plans);
    assert.equal(yamlText.split("---\n").length, 3, "plan --dry-run prints both CronJobs and the Deployment");
    assert.match(yamlText, /kind: Deployment/);
  });

  test("GIVEN a base-backup schedule WHEN resolved THEN it is the base CronJob's, and the resolved plan reads back the same", () => {
    const plans = plansOf(planText([pg({ pitr: true, baseBackup: { schedule: { cron: "30 2 * * 0" } } })]));
    const base = compileManifests(plans).find((c) => c.metadata.labels[LABELS.job] === "base-backup")!;
    assert.equal(base.spec.schedule, "30 2 * * 0");
    const target = plans[0]!.spec.targets[0]!;
    assert.equal(target.pitr, true);
    const again = plansOf(yaml.dump(plans[0]));
    assert.equal(compile(again), compile(plans), "a resolved plan is a valid hand-written plan");
  });

  test("GIVEN no pitr WHEN compiled THEN no Deployment and no base CronJob, and suspend scales the streamer to 0", () => {
    assert.deepEqual(compileDeployments(plansOf(planText([pg(), redis]))), []);
    assert.equal(compileManifests(plansOf(planText([pg(), redis]))).length, 2);
    const [suspended] = compileDeployments(plansOf(planText([pg({ pitr: true, suspend: true })])));
    assert.equal(suspended?.spec!.replicas, 0);
  });

  test("GIVEN pitr on a non-pg target, a base-backup schedule without pitr, or a bad pitr value THEN one line each names the field", () => {
    assert.deepEqual(problemsOf(planText([{ ...redis, pitr: true }])), [
      "plans/pitr.yaml: /spec/targets/0/pitr is only for postgresql, not redis (got true)",
    ]);
    assert.deepEqual(problemsOf(planText([pg({ baseBackup: { schedule: { period: "12h" } } })])), [
      "plans/pitr.yaml: /spec/targets/0/baseBackup is only used with pitr: true",
    ]);
    assert.deepEqual(problemsOf(planText([pg({ pitr: "yes" })])), [
      'plans/pitr.yaml: /spec/targets/0/pitr must be boolean (got "yes")',
    ]);
    assert.deepEqual(problemsOf(planText([pg({ pitr: true, baseBackup: { schedule: { period: "1y" } } })])), [
      'plans/pitr.yaml: /spec/targets/0/baseBackup/schedule/period must be <number><s|m|h|d>, e.g. 24h, with a number from 1 to 999999 (got "1y")',
    ]);
  });

  test("GIVEN two pitr targets whose streamer names would clash WHEN compiled THEN one line names both", () => {
    // `pg` streams as `…-pg-wal`; a target named `pg-wal` would take its CronJob name, not its Deployment's: fine.
    const plans = plansOf(planText([pg({ pitr: true }), pg({ name: "pg-wal" })]));
    assert.equal(compileDeployments(plans).length, 1);
    const clash = plansOf(planText([pg({ pitr: true }), pg({ name: "pg-base" })]));
    assert.throws(
      () => compileManifests(clash),
      /CronJob ns\/capsule-ns-app-pg-base would be compiled for both/,
    );
  });
});

describe("pitr: the CnvrgApp field", () => {
  const app = (backup: Record<string, unknown>, engines: Array<"postgresql" | "redis"> = ["postgresql"]) => {
    const built = cnvrgApp("ns", "app", { engines }) as {
      spec: { dbs: Record<string, { backup: Record<string, unknown> }> };
    };
    for (const db of Object.values(built.spec.dbs)) Object.assign(db.backup, backup);
    return built;
  };

  test("GIVEN spec.dbs.pg.backup.pitr: true WHEN scanned THEN the pg target has pitr and a daily base backup", () => {
    const { plans, skipped } = scan([app({ pitr: true })]);
    assert.deepEqual(skipped, []);
    const target = plans[0]!.spec.targets[0]!;
    assert.equal(target.pitr, true);
    assert.match(target.baseBackup!.schedule.cron, /^\d+ \d+ \* \* \*$/);
    assert.equal(compileDeployments(plans).length, 1);
  });

  test("GIVEN baseBackupPeriod WHEN scanned THEN it sets the base-backup schedule; without pitr nothing streams", () => {
    const withPeriod = scan([app({ pitr: true, baseBackupPeriod: "6h" })]).plans[0]!.spec.targets[0]!;
    assert.match(withPeriod.baseBackup!.schedule.cron, /^\d+ \d+-23\/6 \* \* \*$/);
    const off = scan([app({})]).plans[0]!.spec.targets[0]!;
    assert.equal(off.pitr, undefined);
    assert.equal(off.baseBackup, undefined);
  });

  test("GIVEN pitr on redis, or a pitr that is not a boolean WHEN scanned THEN that target is skipped with one line, the others planned", () => {
    const { plans, skipped } = scan([app({ pitr: true }, ["postgresql", "redis"])]);
    assert.deepEqual(skipped.map(formatSkipped), [
      "skipped target redis of CnvrgApp ns/app: spec.dbs.redis.backup.pitr is only for postgresql (got true)",
    ]);
    assert.deepEqual(
      plans[0]!.spec.targets.map((t) => t.name),
      ["postgresql"],
    );
    const bad = scan([app({ pitr: "on" })]);
    assert.deepEqual(bad.skipped.map(formatSkipped), [
      'skipped target postgresql of CnvrgApp ns/app: spec.dbs.pg.backup.pitr must be true or false (got "on")',
    ]);
  });
});
