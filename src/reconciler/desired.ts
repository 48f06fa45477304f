/**
 * What the cluster should hold: CnvrgApps scanned, merged with the hand-written plans, compiled to CronJobs and the
 * pitr targets' WAL streamer Deployments. Pure.
 * A plan that cannot be compiled does not stop the others; its cluster is *held* instead — the reconciler leaves
 * that cluster's existing CronJobs exactly as they are, because "I could not build it" must never mean "delete it".
 * The same holds for a CnvrgApp (or one of its targets) the scanner skipped: a typo in a period keeps yesterday's
 * backups running rather than removing them.
 */
import { compiledManifests, type CompiledManifest } from "../compiler/compile.js";
import type { DeploymentManifest } from "../compiler/wal-streamer.js";
import { ANNOTATIONS, LABELS, type CronJobManifest } from "../compiler/cronjob.js";
import { messageOf } from "../domain/errors.js";
import type { SourcedPlanDocument } from "../plan/document.js";
import { mergePlans } from "../plan/merge.js";
import type { BackupPlan } from "../plan/types.js";
import type { SkippedField } from "../scanner/fields.js";
import { scan } from "../scanner/scan.js";

export interface DesiredOptions {
  /** The capsule image for scanned plans. */
  readonly image?: string;
  /** Only CronJobs in this namespace are managed; targets elsewhere are reported, not applied. */
  readonly namespace?: string;
}

export interface DesiredState {
  readonly cronJobs: CronJobManifest[];
  readonly deployments: DeploymentManifest[];
  readonly plans: BackupPlan[];
  readonly skipped: SkippedField[];
  /** `<cluster>` or `<cluster>/<target>` whose desired state is unknown this pass. */
  readonly held: ReadonlySet<string>;
  /** One line per plan or target that could not be applied, and why. */
  readonly problems: string[];
}

/** Throws (a `PlanError`) only when the hand-written plans themselves are invalid: then nothing is known. */
export function desiredState(
  cnvrgApps: readonly unknown[],
  handWritten: readonly SourcedPlanDocument[],
  options: DesiredOptions = {},
): DesiredState {
  const scanned = scan(cnvrgApps, { ...(options.image !== undefined && { image: options.image }) });
  const plans = mergePlans(scanned.plans, handWritten);
  const held = new Set<string>();
  const problems: string[] = [];
  for (const s of scanned.skipped) held.add(holdKey(clusterOfApp(s.app), s.target));

  const cronJobs: CronJobManifest[] = [];
  const deployments: DeploymentManifest[] = [];
  const owners = new Map<string, string>();
  for (const plan of plans) {
    const cluster = plan.metadata.cluster;
    let manifests: CompiledManifest[];
    try {
      manifests = [...compiledManifests([plan])];
    } catch (error) {
      held.add(cluster);
      problems.push(`cluster ${cluster}: cannot compile: ${messageOf(error)}`);
      continue;
    }
    for (const manifest of manifests) {
      const { namespace, name } = manifest.metadata;
      const target = manifest.metadata.labels[LABELS.target] ?? "";
      if (options.namespace !== undefined && namespace !== options.namespace) {
        problems.push(
          `cluster ${cluster} target ${target}: namespace ${namespace} is outside --namespace ${options.namespace}; not applied`,
        );
        continue;
      }
      const key = `${namespace}/${name}`;
      const owner = owners.get(`${manifest.kind} ${key}`);
      if (owner !== undefined) {
        held.add(holdKey(cluster, target));
        problems.push(
          `cluster ${cluster} target ${target}: ${manifest.kind} ${key} is already compiled for ${owner}`,
        );
        continue;
      }
      owners.set(`${manifest.kind} ${key}`, `cluster ${cluster} target ${target}`);
      if (manifest.kind === "CronJob") cronJobs.push(manifest);
      else deployments.push(manifest);
    }
  }
  return { cronJobs, deployments, plans, skipped: scanned.skipped, held, problems };
}

export function holdKey(cluster: string, target?: string): string {
  return target === undefined ? cluster : `${cluster}/${target}`;
}

/** `<namespace>/<name>` (the scanner's app identity) → the cluster id `<namespace>.<name>`. */
export function clusterOfApp(app: string): string {
  return app.replace("/", ".");
}

/** Each target's backup CronJob by `<cluster>/<target>` (drill CronJobs left out): what a backup request runs. */
export function backupCronJobs(cronJobs: readonly CronJobManifest[]): Map<string, CronJobManifest> {
  return byTarget(cronJobs, undefined, new Map());
}

/**
 * Per `cluster/target`, the CronJob a restore Job is made from: the restore-drill CronJob when the target has one
 * (it alone carries the age identity of an encrypted target), else the backup CronJob.
 */
export function restoreCronJobs(cronJobs: readonly CronJobManifest[]): Map<string, CronJobManifest> {
  return byTarget(cronJobs, "verify", backupCronJobs(cronJobs));
}

/** The CronJobs whose job label is `job` (backup CronJobs carry none), set into `into` by `<cluster>/<target>`. */
function byTarget(
  cronJobs: readonly CronJobManifest[],
  job: string | undefined,
  into: Map<string, CronJobManifest>,
): Map<string, CronJobManifest> {
  for (const m of cronJobs) {
    if (m.metadata.labels[LABELS.job] !== job) continue;
    const cluster = m.metadata.annotations[ANNOTATIONS.cluster];
    const target = m.metadata.labels[LABELS.target];
    if (cluster !== undefined && target !== undefined) into.set(`${cluster}/${target}`, m);
  }
  return into;
}
