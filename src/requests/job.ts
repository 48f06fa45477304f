/**
 * A Job for one bucket request, made from the target's compiled CronJob the way `kubectl create job --from=cronjob/…`
 * does: the CronJob's jobTemplate, a name derived from the request (so the same request can never make two Jobs:
 * the API server refuses the second name), marked with the request id. Pure.
 */
import { sha256Hex } from "../compiler/canonical-json.js";
import type { CronJobManifest } from "../compiler/cronjob.js";
import type { JobManifest } from "../k8s/workloads.js";

export const REQUEST_LABEL = "capsule.cnvrg.io/request";
export const REQUEST_ANNOTATIONS = {
  requestId: "capsule.cnvrg.io/request-id",
  requestedBy: "capsule.cnvrg.io/requested-by",
} as const;

import { REQUEST_ENV } from "../plan/run-contract.js";

/** The Job's name: the CronJob's (≤ 52) plus 11, like the Jobs a CronJob makes itself, so ≤ 63. */
export function requestJobName(cronJobName: string, cluster: string, requestId: string): string {
  return `${cronJobName}-${sha256Hex(`${cluster}/${requestId}`).slice(0, 10)}`;
}

export function requestJob(
  cronJob: CronJobManifest,
  request: { readonly cluster: string; readonly requestId: string; readonly requestedBy: string },
): JobManifest {
  const template = cronJob.spec?.jobTemplate;
  const name = requestJobName(cronJob.metadata.name, request.cluster, request.requestId);
  const mark = sha256Hex(`${request.cluster}/${request.requestId}`).slice(0, 10);
  const labels = { ...template?.metadata?.labels, [REQUEST_LABEL]: mark };
  const pod = template?.spec?.template;
  const env = [
    { name: REQUEST_ENV.trigger, value: "request" },
    { name: REQUEST_ENV.requestId, value: request.requestId },
    { name: REQUEST_ENV.requestedBy, value: request.requestedBy },
  ];
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: {
      name,
      namespace: cronJob.metadata.namespace,
      labels,
      annotations: {
        ...template?.metadata?.annotations,
        [REQUEST_ANNOTATIONS.requestId]: request.requestId,
        [REQUEST_ANNOTATIONS.requestedBy]: request.requestedBy,
        "cronjob.kubernetes.io/instantiate": "manual",
      },
    },
    spec: {
      ...template?.spec,
      template: {
        ...pod,
        metadata: { ...pod?.metadata, labels: { ...pod?.metadata?.labels, [REQUEST_LABEL]: mark } },
        spec: {
          ...pod?.spec,
          containers: (pod?.spec?.containers ?? []).map((c) => ({ ...c, env: [...(c.env ?? []), ...env] })),
        },
      },
    },
  };
}
