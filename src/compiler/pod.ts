/**
 * The pod every capsule workload of a target runs — the backup and drill CronJobs' and the WAL streamer's — in one
 * place, so they cannot drift apart: the same image, env and secret references, bucket volumes and lockdown. No API
 * token (a run talks to its database and the bucket only), non-root, read-only root with an emptyDir at /tmp, no
 * capabilities, RuntimeDefault seccomp. Callers choose the arguments, the restart policy and what a long runner adds.
 */
import type { V1Container, V1EnvVar, V1PodSpec } from "@kubernetes/client-node";
import { TMP_SIZE_LIMIT } from "../plan/defaults.js";
import type { BackupPlan, Resources, Target } from "../plan/types.js";
import { storageVolumes } from "./storage-volumes.js";

const TMP_VOLUME = "tmp";

export interface CapsulePod {
  readonly args: string[];
  readonly env: V1EnvVar[];
  readonly restartPolicy: "Never" | "Always";
  /** @default the target's (sized for a dump) */
  readonly resources?: Resources;
  /** Probes and the like, for a container that runs for good. */
  readonly container?: Pick<V1Container, "livenessProbe" | "readinessProbe" | "startupProbe">;
  readonly terminationGracePeriodSeconds?: number;
}

export function capsulePodSpec(plan: BackupPlan, target: Target, pod: CapsulePod): V1PodSpec {
  const settings = plan.spec.pod;
  const storage = storageVolumes(plan, target);
  const resources = pod.resources ?? target.resources;
  return {
    restartPolicy: pod.restartPolicy,
    ...(pod.terminationGracePeriodSeconds !== undefined && {
      terminationGracePeriodSeconds: pod.terminationGracePeriodSeconds,
    }),
    automountServiceAccountToken: false,
    // Service links would put every Service of the namespace into the env; a run needs none of them.
    enableServiceLinks: false,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: settings.runAsUser,
      runAsGroup: settings.runAsGroup,
      fsGroup: settings.fsGroup,
      seccompProfile: { type: "RuntimeDefault" },
    },
    ...(settings.imagePullSecrets.length > 0 && {
      imagePullSecrets: settings.imagePullSecrets.map((name) => ({ name })),
    }),
    containers: [
      {
        name: "capsule",
        image: plan.spec.image,
        imagePullPolicy: "IfNotPresent",
        args: pod.args,
        env: pod.env,
        resources: { requests: { ...resources.requests }, limits: { ...resources.limits } },
        securityContext: {
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          runAsNonRoot: true,
          capabilities: { drop: ["ALL"] },
        },
        volumeMounts: [{ name: TMP_VOLUME, mountPath: "/tmp" }, ...storage.map((v) => v.mount)],
        ...pod.container,
      },
    ],
    volumes: [{ name: TMP_VOLUME, emptyDir: { sizeLimit: TMP_SIZE_LIMIT } }, ...storage.map((v) => v.volume)],
  };
}
