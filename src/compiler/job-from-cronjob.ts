/**
 * A one-off Job made from a capsule CronJob the way `kubectl create job --from=cronjob/…` makes one: the CronJob's
 * jobTemplate — the same image, service account, hardened pod and secretKeyRefs — under a name of the caller's,
 * marked with a label and annotations, with extra env and, for a restore, other `capsule run` arguments. Pure.
 *
 * Used by the S3 watcher (bucket requests) and by `--in-cluster` (an operator's backup or restore run inside the
 * cluster, so database credentials never leave it).
 */
import type { V1CronJob, V1EnvVar, V1Job } from "@kubernetes/client-node";
import type { ManifestMetadata } from "./cronjob.js";

/** A Job as capsule makes it: every field this module sets is present. */
export interface JobManifest extends V1Job {
  apiVersion: "batch/v1";
  kind: "Job";
  metadata: ManifestMetadata;
}

export interface OneOffJob {
  /** ≤ 63 characters; deriving it from what the Job is for makes a second Job for the same thing impossible. */
  readonly name: string;
  /** Added to the Job's and its pod's labels. */
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  /** Appended to the container's env. */
  readonly env?: readonly V1EnvVar[];
  /** Replaces the container's args (a CronJob's are `run --cluster C --target T`). */
  readonly args?: readonly string[];
  /**
   * Pod retries. A restore must never be retried behind the operator's back (a second attempt could start from a
   * half-restored database), so callers that restore pass 0. Default: the CronJob's.
   */
  readonly backoffLimit?: number;
  /** Keep the finished Job (and its pod's logs) this long. Default: the CronJob's. */
  readonly ttlSecondsAfterFinished?: number;
  /** A PersistentVolumeClaim mounted into the container as the volume `name` (a physical restore's new PVC). */
  readonly claim?: { readonly name: string; readonly claimName: string; readonly mountPath: string };
}

export function jobFromCronJob(
  cronJob: V1CronJob & { metadata: { name: string; namespace: string } },
  job: OneOffJob,
): JobManifest {
  const template = cronJob.spec?.jobTemplate;
  const pod = template?.spec?.template;
  const labels = { ...template?.metadata?.labels, ...job.labels };
  const claim = job.claim;
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: {
      name: job.name,
      namespace: cronJob.metadata.namespace,
      labels,
      annotations: {
        ...template?.metadata?.annotations,
        ...job.annotations,
        "cronjob.kubernetes.io/instantiate": "manual",
      },
    },
    spec: {
      ...template?.spec,
      ...(job.backoffLimit !== undefined && { backoffLimit: job.backoffLimit }),
      ...(job.ttlSecondsAfterFinished !== undefined && {
        ttlSecondsAfterFinished: job.ttlSecondsAfterFinished,
      }),
      template: {
        ...pod,
        metadata: { ...pod?.metadata, labels: { ...pod?.metadata?.labels, ...job.labels } },
        spec: {
          ...pod?.spec,
          containers: (pod?.spec?.containers ?? []).map((c) => ({
            ...c,
            ...(job.args && { args: [...job.args] }),
            env: [...(c.env ?? []), ...(job.env ?? [])],
            ...(claim && {
              volumeMounts: [...(c.volumeMounts ?? []), { name: claim.name, mountPath: claim.mountPath }],
            }),
          })),
          ...(claim && {
            volumes: [
              ...(pod?.spec?.volumes ?? []),
              { name: claim.name, persistentVolumeClaim: { claimName: claim.claimName } },
            ],
          }),
        },
      },
    },
  };
}
