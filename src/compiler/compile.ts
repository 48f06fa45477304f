/**
 * The compiler (docs/design.md §5): plans → CronJobs (and, for a pitr target, its WAL streamer's Deployment), through cdk8s so `cdk8s synth` (cdk8s.yaml) builds the very same
 * objects. Low-level `ApiObject`s only: cdk8s-plus adds defaults of its own (a starting deadline, resource
 * requests, a hashed selector label) that capsule does not want. Pure and byte-stable: plans are compiled in
 * cluster order and targets in name order, keys are sorted, and nothing reads the clock or the environment.
 */
import { ApiObject, App, Chart } from "cdk8s";
import { CapsuleError, ErrorCode } from "../domain/errors.js";
import type { BackupPlan, Target } from "../plan/types.js";
import { cronJobManifest, jobName, type CronJobManifest, type JobKind } from "./cronjob.js";
import { cronJobName } from "./names.js";
import { walStreamerManifest, walStreamerName, type DeploymentManifest } from "./wal-streamer.js";
import { dumpYaml } from "./yaml.js";

/** Everything the compiler makes. */
export type CompiledManifest = CronJobManifest | DeploymentManifest;

export function isCronJob(manifest: CompiledManifest): manifest is CronJobManifest {
  return manifest.kind === "CronJob";
}

export function isDeployment(manifest: CompiledManifest): manifest is DeploymentManifest {
  return manifest.kind === "Deployment";
}

/** A cdk8s app holding one chart per plan; `cdk8s-app.ts` synthesizes it to files. */
export function buildApp(plans: readonly BackupPlan[], app: App = new App()): App {
  const sorted = inOrder(plans);
  assertUniqueNames(sorted);
  for (const plan of sorted) addChart(app, plan);
  return app;
}

/**
 * The compiled CronJobs one at a time, in output order, so a caller can write each and let it go (6,000 CronJobs
 * are 26 MB of YAML). Each plan gets an app of its own, synthesized and dropped before the next, so memory stays
 * that of one plan; names are checked across all plans first, so an error comes before any output. Not
 * `chart.toJson()`: it re-validates the whole app per chart. capsule adds no dependencies between objects, so cdk8s'
 * dependency ordering has nothing to order and each ApiObject is serialized directly.
 */
export function* compiledManifests(plans: readonly BackupPlan[]): Generator<CompiledManifest> {
  const sorted = inOrder(plans);
  assertUniqueNames(sorted);
  for (const plan of sorted) {
    const app = new App();
    const chart = addChart(app, plan);
    const errors = app.node.findAll().flatMap((c) => c.node.validate());
    if (errors.length > 0) throw new Error(`cdk8s validation failed: ${errors.join("; ")}`);
    for (const child of chart.node.children) {
      if (ApiObject.isApiObject(child)) yield child.toJson() as CompiledManifest;
    }
  }
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

/** Plans by cluster, targets by name: the output order, whatever order the plans came in. */
function inOrder(plans: readonly BackupPlan[]): BackupPlan[] {
  return [...plans]
    .sort((a, b) => compare(a.metadata.cluster, b.metadata.cluster))
    .map((p) => ({
      ...p,
      spec: { ...p.spec, targets: [...p.spec.targets].sort((a, b) => compare(a.name, b.name)) },
    }));
}

/** Two targets whose shortened names meet in one namespace would overwrite each other's CronJob: refuse. */
function assertUniqueNames(plans: readonly BackupPlan[]): void {
  const owners = new Map<string, string>();
  for (const plan of plans) {
    for (const target of plan.spec.targets) {
      for (const kind of jobKinds(target)) {
        const key = `${target.namespace}/${cronJobName(plan.metadata.cluster, jobName(target, kind))}`;
        const owner = `cluster ${plan.metadata.cluster} target ${target.name}${kind === "backup" ? "" : ` (${kind})`}`;
        const clash = owners.get(key);
        if (clash !== undefined) {
          throw new CapsuleError(
            ErrorCode.Config,
            `CronJob ${key} would be compiled for both ${clash} and ${owner}: rename one of the targets`,
          );
        }
        owners.set(key, owner);
      }
      if (!target.pitr) continue;
      // Deployments and CronJobs are different kinds: a name may repeat across them, never within one.
      const key = `Deployment ${target.namespace}/${walStreamerName(plan.metadata.cluster, target.name)}`;
      const owner = `cluster ${plan.metadata.cluster} target ${target.name} (wal-streamer)`;
      const clash = owners.get(key);
      if (clash !== undefined) {
        throw new CapsuleError(
          ErrorCode.Config,
          `${key} would be compiled for both ${clash} and ${owner}: rename one of the targets`,
        );
      }
      owners.set(key, owner);
    }
  }
}

/**
 * A backup CronJob per target, a base-backup CronJob for each pitr target, and a drill CronJob for each target with
 * a verify schedule.
 */
function jobKinds(target: Target): JobKind[] {
  return [
    "backup",
    ...(target.baseBackup ? (["base-backup"] as const) : []),
    ...(target.verify?.schedule ? (["verify"] as const) : []),
  ];
}

/** The compiled CronJobs as objects (for the reconciler and for tests). */
export function compileManifests(plans: readonly BackupPlan[]): CronJobManifest[] {
  return [...compiledManifests(plans)].filter(isCronJob);
}

/** The compiled WAL streamer Deployments (pitr targets only). */
export function compileDeployments(plans: readonly BackupPlan[]): DeploymentManifest[] {
  return [...compiledManifests(plans)].filter(isDeployment);
}

/** One YAML document per compiled object, each ending in a newline; join with `---\n` (what `compile` does). */
export function* compileYaml(plans: readonly BackupPlan[]): Generator<string> {
  for (const manifest of compiledManifests(plans)) yield dumpYaml(manifest);
}

export const DOCUMENT_SEPARATOR = "---\n";

/**
 * Multi-document YAML of every compiled object; empty when no plan has a target. Serialized by yaml.ts rather than
 * `App.synthYaml()`: keys sorted at every level regardless of cdk8s' CDK8S_DISABLE_SORT switch (apiVersion, kind,
 * metadata, spec happen to sort into their usual order), no line folding, and several times faster than the
 * general-purpose emitters on thousands of documents.
 */
export function compile(plans: readonly BackupPlan[]): string {
  return [...compileYaml(plans)].join(DOCUMENT_SEPARATOR);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
