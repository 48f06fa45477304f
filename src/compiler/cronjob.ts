/**
 * One target → one batch/v1 CronJob (docs/design.md §5), as plain data. The pod is locked down as far as a run allows: no
 * API token (a run talks to its database and S3 only), non-root, read-only root with an emptyDir at /tmp, no
 * capabilities, RuntimeDefault seccomp. The `spec-hash` annotation is the sha256 of the canonical JSON of
 * everything else, so the reconciler can tell "unchanged" without comparing server-defaulted fields.
 */
import type { V1CronJob } from "@kubernetes/client-node";
import { TMP_SIZE_LIMIT } from "../plan/defaults.js";
import { runArgs } from "../plan/run-contract.js";
import type { BackupPlan, Target } from "../plan/types.js";
import { canonicalJson, sha256Hex } from "./canonical-json.js";
import { containerEnv } from "./env.js";
import { storageVolumes } from "./storage-volumes.js";
import { cronJobName, labelValue } from "./names.js";

export const LABELS = {
  managedBy: "app.kubernetes.io/managed-by",
  name: "app.kubernetes.io/name",
  cluster: "capsule.cnvrg.io/cluster",
  target: "capsule.cnvrg.io/target",
  engine: "capsule.cnvrg.io/engine",
  /** Only on restore-drill CronJobs (`verify`); backup CronJobs carry none, so their names and hashes stay put. */
  job: "capsule.cnvrg.io/job",
} as const;

export const ANNOTATIONS = {
  /** The full cluster id; the label may be shortened to fit 63 characters. */
  cluster: "capsule.cnvrg.io/cluster",
  specHash: "capsule.cnvrg.io/spec-hash",
} as const;

export const MANAGED_BY = "capsule";
const TMP_VOLUME = "tmp";

/** A CronJob as capsule compiles it: every field the compiler sets is present. */
export type CronJobManifest = V1CronJob & {
  apiVersion: "batch/v1";
  kind: "CronJob";
  metadata: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
  };
};

/**
 * What a CronJob runs: the target's backups, or (when the target has a verify policy) its scheduled restore drill,
 * `capsule run --verify latest`, a second CronJob named `<target>-verify` and labelled `capsule.cnvrg.io/job: verify`.
 */
export type JobKind = "backup" | "verify";

/** The CronJob's name part after the cluster: the target, or `<target>-verify` for its drill. */
export function jobName(target: Target, kind: JobKind): string {
  return kind === "verify" ? `${target.name}-verify` : target.name;
}

export function cronJobManifest(plan: BackupPlan, target: Target, kind: JobKind = "backup"): CronJobManifest {
  const cluster = plan.metadata.cluster;
  const { pod } = plan.spec;
  const schedule = kind === "verify" ? target.verify?.schedule?.cron : target.schedule.cron;
  if (!schedule) throw new Error(`cronJobManifest: target ${target.name} has no ${kind} schedule`);
  const storage = storageVolumes(plan, target);
  const labels = {
    [LABELS.managedBy]: MANAGED_BY,
    [LABELS.name]: "capsule",
    [LABELS.cluster]: labelValue(cluster),
    [LABELS.target]: labelValue(target.name),
    [LABELS.engine]: target.engine,
    ...(kind === "verify" ? { [LABELS.job]: "verify" } : {}),
  };
  const unhashed: CronJobManifest = {
    apiVersion: "batch/v1",
    kind: "CronJob",
    metadata: {
      name: cronJobName(cluster, jobName(target, kind)),
      namespace: target.namespace,
      labels,
      annotations: { [ANNOTATIONS.cluster]: cluster },
    },
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
            spec: {
              restartPolicy: "Never",
              automountServiceAccountToken: false,
              // Service links would put every Service of the namespace into the env; a run needs none of them.
              enableServiceLinks: false,
              securityContext: {
                runAsNonRoot: true,
                runAsUser: pod.runAsUser,
                runAsGroup: pod.runAsGroup,
                fsGroup: pod.fsGroup,
                seccompProfile: { type: "RuntimeDefault" },
              },
              ...(pod.imagePullSecrets.length > 0 && {
                imagePullSecrets: pod.imagePullSecrets.map((name) => ({ name })),
              }),
              containers: [
                {
                  name: "capsule",
                  image: plan.spec.image,
                  imagePullPolicy: "IfNotPresent",
                  args: runArgs(cluster, target.name, kind === "verify" ? ["--verify", "latest"] : []),
                  env: containerEnv(plan, target, kind),
                  resources: {
                    requests: { ...target.resources.requests },
                    limits: { ...target.resources.limits },
                  },
                  securityContext: {
                    allowPrivilegeEscalation: false,
                    readOnlyRootFilesystem: true,
                    runAsNonRoot: true,
                    capabilities: { drop: ["ALL"] },
                  },
                  volumeMounts: [{ name: TMP_VOLUME, mountPath: "/tmp" }, ...storage.map((v) => v.mount)],
                },
              ],
              volumes: [
                { name: TMP_VOLUME, emptyDir: { sizeLimit: TMP_SIZE_LIMIT } },
                ...storage.map((v) => v.volume),
              ],
            },
          },
        },
      },
    },
  };
  const specHash = sha256Hex(canonicalJson(unhashed));
  return {
    ...unhashed,
    metadata: {
      ...unhashed.metadata,
      annotations: { ...unhashed.metadata.annotations, [ANNOTATIONS.specHash]: specHash },
    },
  };
}
