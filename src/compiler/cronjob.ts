/**
 * One target → one batch/v1 CronJob per job kind (docs/design.md §5), as plain data, running the target's locked-down
 * pod (pod.ts). The `spec-hash` annotation is the sha256 of the canonical JSON of
 * everything else, so the reconciler can tell "unchanged" without comparing server-defaulted fields.
 */
import type { V1CronJob } from "@kubernetes/client-node";
import { runArgs } from "../plan/run-contract.js";
import type { BackupPlan, Target } from "../plan/types.js";
import { canonicalJson, sha256Hex } from "./canonical-json.js";
import { containerEnv } from "./env.js";
import { capsulePodSpec } from "./pod.js";
import { cronJobName, labelValue } from "./names.js";

export const LABELS = {
  managedBy: "app.kubernetes.io/managed-by",
  name: "app.kubernetes.io/name",
  cluster: "capsule.cnvrg.io/cluster",
  target: "capsule.cnvrg.io/target",
  engine: "capsule.cnvrg.io/engine",
  /** What a workload other than the backup CronJob is (`targetLabels`); backup CronJobs carry none. */
  job: "capsule.cnvrg.io/job",
} as const;

export const ANNOTATIONS = {
  /** The full cluster id; the label may be shortened to fit 63 characters. */
  cluster: "capsule.cnvrg.io/cluster",
  specHash: "capsule.cnvrg.io/spec-hash",
} as const;

export const MANAGED_BY = "capsule";

/** The metadata of every object capsule compiles or makes: each field is present. */
export interface ManifestMetadata {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/** A CronJob as capsule compiles it: every field the compiler sets is present. */
export type CronJobManifest = V1CronJob & {
  apiVersion: "batch/v1";
  kind: "CronJob";
  metadata: ManifestMetadata;
};

/**
 * What a CronJob runs: the target's backups; (when the target has a verify policy) its scheduled restore drill,
 * `capsule run --verify latest`, a second CronJob named `<target>-verify` and labelled `capsule.cnvrg.io/job:
 * verify`; (with `pitr`) its physical base backups, `capsule run --physical`, named `<target>-base` and labelled
 * `capsule.cnvrg.io/job: base-backup`.
 */
export type JobKind = "backup" | "verify" | "base-backup";

const JOB_NAME_SUFFIX: Readonly<Record<JobKind, string>> = {
  backup: "",
  verify: "-verify",
  "base-backup": "-base",
};

const RUN_EXTRA_ARGS: Readonly<Record<JobKind, readonly string[]>> = {
  backup: [],
  verify: ["--verify", "latest"],
  "base-backup": ["--physical"],
};

/** The CronJob's name part after the cluster: the target, or the target with its kind's suffix. */
export function jobName(target: Target, kind: JobKind): string {
  return `${target.name}${JOB_NAME_SUFFIX[kind]}`;
}

function scheduleOf(target: Target, kind: JobKind): string | undefined {
  if (kind === "verify") return target.verify?.schedule?.cron;
  if (kind === "base-backup") return target.baseBackup?.schedule.cron;
  return target.schedule.cron;
}

/**
 * The labels of a target's workloads. Backup CronJobs carry no `job` label, so their names and hashes stay put;
 * every other workload of the target names what it is (`verify`, `base-backup`, `wal-streamer`).
 */
export function targetLabels(cluster: string, target: Target, job?: string): Record<string, string> {
  return {
    [LABELS.managedBy]: MANAGED_BY,
    [LABELS.name]: "capsule",
    [LABELS.cluster]: labelValue(cluster),
    [LABELS.target]: labelValue(target.name),
    [LABELS.engine]: target.engine,
    ...(job !== undefined && { [LABELS.job]: job }),
  };
}

/** A target's workload named `name`: its metadata, and the spec hash over all of it (see the module comment). */
export function hashedManifest<M extends { apiVersion: string; kind: string; metadata: ManifestMetadata }>(
  cluster: string,
  target: Target,
  name: string,
  labels: Record<string, string>,
  { apiVersion, kind, spec }: Omit<M, "metadata"> & { spec: unknown },
): M {
  const metadata: ManifestMetadata = {
    name,
    namespace: target.namespace,
    labels,
    annotations: { [ANNOTATIONS.cluster]: cluster },
  };
  metadata.annotations[ANNOTATIONS.specHash] = sha256Hex(canonicalJson({ apiVersion, kind, metadata, spec }));
  return { apiVersion, kind, metadata, spec } as unknown as M;
}

export function cronJobManifest(plan: BackupPlan, target: Target, kind: JobKind = "backup"): CronJobManifest {
  const cluster = plan.metadata.cluster;
  const schedule = scheduleOf(target, kind);
  if (!schedule) throw new Error(`cronJobManifest: target ${target.name} has no ${kind} schedule`);
  const labels = targetLabels(cluster, target, kind === "backup" ? undefined : kind);
  const name = cronJobName(cluster, jobName(target, kind));
  return hashedManifest<CronJobManifest>(cluster, target, name, labels, {
    apiVersion: "batch/v1",
    kind: "CronJob",
    spec: {
      schedule,
      timeZone: "Etc/UTC",
      concurrencyPolicy: "Forbid",
      suspend: target.suspend,
      startingDeadlineSeconds: target.deadlines.startingDeadlineSeconds,
      successfulJobsHistoryLimit: target.deadlines.successfulJobsHistoryLimit,
      failedJobsHistoryLimit: target.deadlines.failedJobsHistoryLimit,
      jobTemplate: {
        metadata: { labels },
        spec: {
          backoffLimit: target.deadlines.backoffLimit,
          activeDeadlineSeconds: target.deadlines.activeDeadlineSeconds,
          ttlSecondsAfterFinished: target.deadlines.ttlSecondsAfterFinished,
          template: {
            metadata: { labels },
            spec: capsulePodSpec(plan, target, {
              restartPolicy: "Never",
              args: runArgs(cluster, target.name, RUN_EXTRA_ARGS[kind]),
              env: containerEnv(plan, target, kind === "verify" ? "verify" : "backup"),
            }),
          },
        },
      },
    },
  });
}
