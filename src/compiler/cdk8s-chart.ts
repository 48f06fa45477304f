/**
 * The compiled plans as a cdk8s app, one chart per plan, for `cdk8s synth` (cdk8s-app.ts). Low-level `ApiObject`s
 * only: cdk8s-plus adds defaults of its own (a starting deadline, resource requests, a hashed selector label) that
 * capsule does not want. `capsule plan` builds the same objects without cdk8s (compile.ts), so it does not load it.
 */
import { ApiObject, App, Chart } from "cdk8s";
import type { BackupPlan } from "../plan/types.js";
import { assertUniqueNames, inOrder, jobKinds } from "./compile.js";
import { cronJobManifest, jobName } from "./cronjob.js";
import { walStreamerManifest } from "./wal-streamer.js";

export function buildApp(plans: readonly BackupPlan[], app: App = new App()): App {
  const sorted = inOrder(plans);
  assertUniqueNames(sorted);
  for (const plan of sorted) addChart(app, plan);
  return app;
}

function addChart(app: App, plan: BackupPlan): Chart {
  const chart = new Chart(app, plan.metadata.cluster, { disableResourceNameHashes: true });
  for (const target of plan.spec.targets) {
    for (const kind of jobKinds(target)) {
      new ApiObject(chart, jobName(target, kind), cronJobManifest(plan, target, kind));
    }
    // Upper case: no CronJob id (a DNS label) can take it.
    if (target.pitr) new ApiObject(chart, `Deployment-${target.name}`, walStreamerManifest(plan, target));
  }
  return chart;
}
