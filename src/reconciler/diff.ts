/**
 * The reconciler's decision, as a pure function of what should exist and what does, for one kind of object at a
 * time (CronJobs, the WAL streamers' Deployments): which to create, which to replace (their spec-hash differs: the
 * plan changed; or a field capsule owns was changed by hand: drift), which to delete (labelled managed-by capsule,
 * no longer desired), and which to leave alone. Only objects carrying capsule's managed-by label are ever replaced
 * or deleted.
 */
import { ANNOTATIONS, LABELS, MANAGED_BY, type CronJobManifest } from "../compiler/cronjob.js";
import type { LiveCronJob } from "../k8s/workloads.js";
import { holdKey } from "./desired.js";
import { ownedFieldDrift } from "./drift.js";

/** A live CronJob with its spec, when it was read: then its owned fields are checked for drift too. */
export type ObservedCronJob = LiveCronJob & { readonly spec?: unknown };

/** What the diff reads of a compiled object: its identity, labels, annotations and owned spec. */
export interface CompiledObject {
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly labels: Record<string, string>;
    readonly annotations: Record<string, string>;
  };
  readonly spec?: unknown;
}

export type CronJobDiff = WorkloadDiff<CronJobManifest>;

export interface WorkloadDiff<M extends CompiledObject> {
  readonly create: M[];
  readonly replace: Array<{
    readonly desired: M;
    readonly live: LiveCronJob;
    /** `plan changed`, or `drift at <field>` for a hand edit. */
    readonly reason: string;
  }>;
  readonly delete: LiveCronJob[];
  /** Desired and live agree. */
  readonly unchanged: number;
  /** Not desired, but their plan could not be built this pass: kept as they are. */
  readonly held: LiveCronJob[];
}

export function diffCronJobs(
  desired: readonly CronJobManifest[],
  live: readonly ObservedCronJob[],
  held: ReadonlySet<string> = new Set(),
): CronJobDiff {
  return diffWorkloads(desired, live, held);
}

export function diffWorkloads<M extends CompiledObject>(
  desired: readonly M[],
  live: readonly ObservedCronJob[],
  held: ReadonlySet<string> = new Set(),
): WorkloadDiff<M> {
  const managed = live.filter((c) => c.labels[LABELS.managedBy] === MANAGED_BY);
  const liveByKey = new Map(managed.map((c) => [`${c.namespace}/${c.name}`, c]));
  const desiredKeys = new Set<string>();
  const result: WorkloadDiff<M> = { create: [], replace: [], delete: [], unchanged: 0, held: [] };
  let unchanged = 0;
  for (const manifest of desired) {
    const key = `${manifest.metadata.namespace}/${manifest.metadata.name}`;
    desiredKeys.add(key);
    const current = liveByKey.get(key);
    if (!current) {
      result.create.push(manifest);
      continue;
    }
    const reason = replaceReason(manifest, current);
    if (reason) result.replace.push({ desired: manifest, live: current, reason });
    else unchanged++;
  }
  for (const current of managed) {
    if (desiredKeys.has(`${current.namespace}/${current.name}`)) continue;
    const cluster = current.annotations[ANNOTATIONS.cluster] ?? current.labels[LABELS.cluster] ?? "";
    const target = current.labels[LABELS.target];
    if (held.has(holdKey(cluster)) || (target !== undefined && held.has(holdKey(cluster, target))))
      result.held.push(current);
    else result.delete.push(current);
  }
  return { ...result, unchanged };
}

function replaceReason(desired: CompiledObject, live: ObservedCronJob): string | undefined {
  if (live.annotations[ANNOTATIONS.specHash] !== desired.metadata.annotations[ANNOTATIONS.specHash])
    return "plan changed";
  if (!("spec" in live)) return undefined;
  const field = ownedFieldDrift(
    {
      metadata: { labels: desired.metadata.labels, annotations: desired.metadata.annotations },
      spec: desired.spec,
    },
    { metadata: { labels: live.labels, annotations: live.annotations }, spec: live.spec },
  );
  return field === undefined ? undefined : `drift at ${field}`;
}
