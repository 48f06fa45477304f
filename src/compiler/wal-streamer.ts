/**
 * A pitr target's WAL streamer: an apps/v1 Deployment of one pod running `capsule run --stream-wal` for good, with
 * exactly the env, secret references and volumes of the target's backup CronJob (pod.ts). One replica and the
 * Recreate strategy: two streamers on one replication slot would fight over it, and a rolling update would start
 * the new pod before the old one stopped. Suspending the target scales it to zero. Hashed like the CronJobs, so the
 * reconciler treats both the same way.
 */
import type { V1Deployment, V1Probe } from "@kubernetes/client-node";
import { runArgs, STREAM_WAL_HEARTBEAT } from "../plan/run-contract.js";
import type { BackupPlan, Resources, Target } from "../plan/types.js";
import { hashedManifest, LABELS, targetLabels, type ManifestMetadata } from "./cronjob.js";
import { containerEnv } from "./env.js";
import { cronJobName } from "./names.js";
import { capsulePodSpec } from "./pod.js";

export const WAL_STREAMER_JOB = "wal-streamer";

/** A Deployment as capsule compiles it: every field the compiler sets is present. */
export type DeploymentManifest = V1Deployment & {
  apiVersion: "apps/v1";
  kind: "Deployment";
  metadata: ManifestMetadata;
};

/**
 * The streamer holds one WAL segment (16 MiB) and its compressed copy in memory and otherwise waits on the network:
 * a tenth of a core, and memory with room for a large segment size and the store client's buffers.
 */
export const WAL_STREAMER_RESOURCES: Resources = {
  requests: { cpu: "100m", memory: "128Mi" },
  limits: { cpu: "1", memory: "512Mi" },
};

/**
 * On SIGTERM the streamer uploads the segment in progress and confirms it to the server before it exits; a slow
 * store gets a minute for that. Whatever is cut off stays on the server, held by the slot.
 */
const TERMINATION_GRACE_SECONDS = 60;

/**
 * The process exiting is the usual failure, and Kubernetes restarts it. The probe catches a streamer that hangs
 * without exiting (STREAM_WAL_HEARTBEAT). The image has node and no shell, so node checks the file's age.
 */
const HEARTBEAT_PROBE: V1Probe = {
  exec: {
    command: [
      "node",
      "-e",
      `try{process.exit(Date.now()-require("fs").statSync(${JSON.stringify(STREAM_WAL_HEARTBEAT.file)}).mtimeMs>${STREAM_WAL_HEARTBEAT.staleSeconds * 1000}?1:0)}catch{}`,
    ],
  },
  initialDelaySeconds: 30,
  periodSeconds: 30,
  timeoutSeconds: 10,
  failureThreshold: 3,
};

/** `capsule-<cluster>-<target>-wal`, shortened like a CronJob's name. */
export function walStreamerName(cluster: string, target: string): string {
  return cronJobName(cluster, `${target}-wal`);
}

export function walStreamerManifest(plan: BackupPlan, target: Target): DeploymentManifest {
  if (!target.pitr) throw new Error(`walStreamerManifest: target ${target.name} has no pitr`);
  const cluster = plan.metadata.cluster;
  const labels = targetLabels(cluster, target, WAL_STREAMER_JOB);
  // The selector is immutable: only labels fixed by the Deployment's own name, never the engine or the name label.
  const selector = {
    [LABELS.cluster]: labels[LABELS.cluster]!,
    [LABELS.target]: labels[LABELS.target]!,
    [LABELS.job]: WAL_STREAMER_JOB,
  };
  return hashedManifest<DeploymentManifest>(cluster, target, walStreamerName(cluster, target.name), labels, {
    apiVersion: "apps/v1",
    kind: "Deployment",
    spec: {
      replicas: target.suspend ? 0 : 1,
      strategy: { type: "Recreate" },
      revisionHistoryLimit: 3,
      selector: { matchLabels: selector },
      template: {
        metadata: { labels },
        spec: capsulePodSpec(plan, target, {
          restartPolicy: "Always",
          args: runArgs(cluster, target.name, ["--stream-wal"]),
          env: containerEnv(plan, target, "backup"),
          resources: WAL_STREAMER_RESOURCES,
          terminationGracePeriodSeconds: TERMINATION_GRACE_SECONDS,
          container: { livenessProbe: HEARTBEAT_PROBE },
        }),
      },
    },
  });
}
