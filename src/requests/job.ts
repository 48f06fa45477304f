/**
 * The Job for one bucket request, made from the target's compiled CronJob (see compiler/job-from-cronjob.ts): a name
 * derived from the request (so the same request can never make two Jobs: the API server refuses the second name),
 * marked with the request id. A restore request's Job runs `capsule run … --restore ID` and is never retried. Pure.
 */
import { sha256Hex } from "../compiler/canonical-json.js";
import type { CronJobManifest } from "../compiler/cronjob.js";
import { jobFromCronJob, type JobManifest } from "../compiler/job-from-cronjob.js";
import { REQUEST_ENV, runArgs } from "../plan/run-contract.js";

export const REQUEST_LABEL = "capsule.cnvrg.io/request";
export const REQUEST_ANNOTATIONS = {
  requestId: "capsule.cnvrg.io/request-id",
  requestedBy: "capsule.cnvrg.io/requested-by",
} as const;

/** The Job's name: the CronJob's (≤ 52) plus 11, like the Jobs a CronJob makes itself, so ≤ 63. */
export function requestJobName(cronJobName: string, cluster: string, requestId: string): string {
  return `${cronJobName}-${sha256Hex(`${cluster}/${requestId}`).slice(0, 10)}`;
}

export function requestJob(
  cronJob: CronJobManifest,
  request: {
    readonly cluster: string;
    readonly requestId: string;
    readonly requestedBy: string;
    /** A restore request: the backup to restore. */
    readonly restore?: { readonly target: string; readonly backupId: string };
  },
): JobManifest {
  const mark = sha256Hex(`${request.cluster}/${request.requestId}`).slice(0, 10);
  return jobFromCronJob(cronJob, {
    name: requestJobName(cronJob.metadata.name, request.cluster, request.requestId),
    labels: { [REQUEST_LABEL]: mark },
    annotations: {
      [REQUEST_ANNOTATIONS.requestId]: request.requestId,
      [REQUEST_ANNOTATIONS.requestedBy]: request.requestedBy,
    },
    env: [
      { name: REQUEST_ENV.trigger, value: "request" },
      { name: REQUEST_ENV.requestId, value: request.requestId },
      { name: REQUEST_ENV.requestedBy, value: request.requestedBy },
    ],
    ...(request.restore && {
      args: runArgs(request.cluster, request.restore.target, ["--restore", request.restore.backupId]),
      backoffLimit: 0,
    }),
  });
}
