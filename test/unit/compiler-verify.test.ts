import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { CronJob } from "kubernetes-models/batch/v1/CronJob";
import { compileManifests } from "../../src/compiler/compile.js";
import { LABELS } from "../../src/compiler/cronjob.js";
import { loadPlans } from "../../src/plan/load.js";
import { mergePlans } from "../../src/plan/merge.js";

describe("scheduled restore drills", () => {
  test("GIVEN the example plan (a verify schedule on postgres) WHEN compiled THEN a second, valid CronJob runs capsule run --verify latest", async () => {
    const plans = mergePlans([], await loadPlans("plans"));
    const jobs = compileManifests(plans);
    const drill = jobs.find((j) => j.metadata.labels[LABELS.job] === "verify");
    assert.ok(drill, "a verify CronJob is compiled");
    assert.equal(drill.metadata.name, "capsule-example-ml-platform-postgres-verify");
    assert.equal(drill.metadata.labels[LABELS.target], "postgres");
    const args = drill.spec.jobTemplate.spec!.template.spec!.containers[0]!.args;
    assert.deepEqual(args, [
      "run",
      "--cluster",
      "example.ml-platform",
      "--target",
      "postgres",
      "--verify",
      "latest",
    ]);
    const backup = jobs.find((j) => j.metadata.name === "capsule-example-ml-platform-postgres")!;
    assert.notEqual(drill.spec.schedule, undefined);
    assert.equal(backup.metadata.labels[LABELS.job], undefined, "backup CronJobs carry no job label");
    new CronJob(drill as never).validate();
    // Targets without a verify schedule get no drill.
    assert.equal(jobs.filter((j) => j.metadata.labels[LABELS.job] === "verify").length, 1);
  });
});
