/**
 * The compiler (docs/design.md §5): plans → CronJobs (and, for a pitr target, its WAL streamer's Deployment), the
 * very objects `cdk8s synth` (cdk8s.yaml, cdk8s-chart.ts)
 * builds from the same manifests. Pure and byte-stable: plans are compiled in cluster order and targets in name
 * order, keys are sorted, and nothing reads the clock or the environment.
 */
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

/**
 * The compiled CronJobs one at a time, in output order, so a caller can write each and let it go (6,000 CronJobs
 * are 26 MB of YAML). Names are checked across all plans first, so an error comes before any output. Each object is
 * what cdk8s' `ApiObject.toJson()` makes of the same manifest in `buildApp`'s app (test/unit/compiler-cdk8s.test.ts
 * compares them), built without the construct tree: cdk8s resolves every value through its token resolvers and
 * copies the object twice, most of `capsule plan`'s time and garbage on thousands of CronJobs, for manifests that
 * hold plain data only — no tokens, no patches, no dependencies between objects.
 */
export function* compiledManifests(plans: readonly BackupPlan[]): Generator<CompiledManifest> {
  const sorted = inOrder(plans);
  assertUniqueNames(sorted);
  for (const plan of sorted) {
    for (const target of plan.spec.targets) {
      for (const kind of jobKinds(target)) yield asSynthesized(cronJobManifest(plan, target, kind));
      if (target.pitr) yield asSynthesized(walStreamerManifest(plan, target));
    }
  }
}

/**
 * A manifest as cdk8s synthesizes plain data: `null` and `undefined` members dropped (a `null` array item becomes
 * `undefined`, as there), keys sorted, `apiVersion`, `kind` and `metadata` first; and within `metadata` only, empty
 * arrays and objects dropped too.
 */
function asSynthesized<M extends CompiledManifest>(manifest: M): M {
  const { apiVersion, kind, metadata, ...rest } = manifest;
  const body = sanitized(rest, false) as object;
  return { apiVersion, kind, metadata: sanitized(metadata, true) ?? {}, ...body } as M;
}

function sanitized(value: unknown, dropEmpty: boolean): unknown {
  if (value === null || value === undefined) return undefined;
  if (typeof value !== "object") return value;
  if (Array.isArray(value)) {
    if (dropEmpty && value.length === 0) return undefined;
    return value.map((item) => sanitized(item, dropEmpty));
  }
  const copy: Record<string, unknown> = {};
  let members = 0;
  for (const key of Object.keys(value).sort()) {
    const item = sanitized((value as Record<string, unknown>)[key], dropEmpty);
    if (item === undefined) continue;
    copy[key] = item;
    members++;
  }
  return dropEmpty && members === 0 ? undefined : copy;
}

/** Plans by cluster, targets by name: the output order, whatever order the plans came in. */
export function inOrder(plans: readonly BackupPlan[]): BackupPlan[] {
  return [...plans]
    .sort((a, b) => compare(a.metadata.cluster, b.metadata.cluster))
    .map((p) => ({
      ...p,
      spec: { ...p.spec, targets: [...p.spec.targets].sort((a, b) => compare(a.name, b.name)) },
    }));
}

/** Two targets whose shortened names meet in one namespace would overwrite each other's CronJob: refuse. */
export function assertUniqueNames(plans: readonly BackupPlan[]): void {
  // Keyed with the kind: a name may repeat across Deployments and CronJobs, never within one kind.
  const owners = new Map<string, string>();
  const claim = (object: string, owner: string) => {
    const clash = owners.get(object);
    if (clash !== undefined) {
      throw new CapsuleError(
        ErrorCode.Config,
        `${object} would be compiled for both ${clash} and ${owner}: rename one of the targets`,
      );
    }
    owners.set(object, owner);
  };
  for (const plan of plans) {
    const { cluster } = plan.metadata;
    for (const target of plan.spec.targets) {
      for (const kind of jobKinds(target)) {
        claim(
          `CronJob ${target.namespace}/${cronJobName(cluster, jobName(target, kind))}`,
          `cluster ${cluster} target ${target.name}${kind === "backup" ? "" : ` (${kind})`}`,
        );
      }
      if (target.pitr) {
        claim(
          `Deployment ${target.namespace}/${walStreamerName(cluster, target.name)}`,
          `cluster ${cluster} target ${target.name} (wal-streamer)`,
        );
      }
    }
  }
}

/**
 * A backup CronJob per target, a base-backup CronJob for each pitr target, and a drill CronJob for each target with
 * a verify schedule.
 */
export function jobKinds(target: Target): JobKind[] {
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
