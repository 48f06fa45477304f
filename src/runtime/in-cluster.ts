/**
 * `--in-cluster` (issue 5): an operator's `--create` or `--restore` runs as a Job made from the target's CronJob, so
 * the database and bucket credentials never leave the cluster — the laptop needs only the right to create Jobs and
 * read their pods. The Job's log is followed to the end and its container's exit code becomes capsule's.
 *
 * The Job is never retried (backoffLimit 0: a restore must not start again from a half-restored database behind
 * the operator's back) and is kept a day after it ends for `kubectl logs`. Interrupting capsule detaches: the Job
 * goes on, and capsule says how to follow it.
 */
import { hostname, userInfo } from "node:os";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { V1PersistentVolumeClaim } from "@kubernetes/client-node";
import { sha256Hex } from "../compiler/canonical-json.js";
import { ANNOTATIONS, LABELS, MANAGED_BY } from "../compiler/cronjob.js";
import { jobFromCronJob, type OneOffJob } from "../compiler/job-from-cronjob.js";
import { labelValue } from "../compiler/names.js";
import { CapsuleError, ErrorCode } from "../domain/errors.js";
import { isAlreadyExists, KubeClient } from "../k8s/kube-client.js";
import { Pods, type PodState } from "../k8s/pods.js";
import { VolumeClaims } from "../k8s/volume-claims.js";
import { Workloads, type CronJobWithTemplate, type Named } from "../k8s/workloads.js";
import { REQUEST_ENV, runArgs } from "../plan/run-contract.js";
import type { EngineName } from "../domain/backup.js";

export const IN_CLUSTER_LABEL = "capsule.cnvrg.io/in-cluster";
const REQUESTED_BY_ANNOTATION = "capsule.cnvrg.io/requested-by";
const RUN_ID_ANNOTATION = "capsule.cnvrg.io/run-id";
const KEEP_FINISHED_SECONDS = 24 * 60 * 60;

export interface InClusterRun {
  readonly engine: EngineName;
  /** `ns.name` of the CnvrgApp (or a plan's cluster id); needed when the context sees several. */
  readonly cluster?: string | undefined;
  /** Needed when the cluster has several targets of the engine. */
  readonly target?: string | undefined;
  /** Empty for a backup; `["--restore", ID, …]` for a restore. */
  readonly work: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  /** Each line of the pod's log. */
  readonly logLine: (line: string) => void;
  /** capsule's own progress notes. */
  readonly note: (line: string) => void;
  /** Asked before the Job is created (a restore's confirmation), with the cluster, target and namespace chosen. */
  readonly beforeCreate?: (where: string) => Promise<void>;
  /** How often pods and the Job are polled. @default 1000 */
  readonly pollMs?: number;
  /** How long the pod may take to start before capsule gives up (the Job is left for inspection). @default 10 min */
  readonly startTimeoutMs?: number;
}

export interface InClusterResult {
  readonly exitCode: number;
  readonly job: string;
  /** The run's last plain (non-JSON) output line: a backup id, or a restore's summary. */
  readonly result?: string;
}

export async function runInCluster(run: InClusterRun): Promise<InClusterResult> {
  const { client, workloads } = kube(run.env);
  const cronJob = await runCronJob(workloads, run, client.where);
  const { cluster, target, namespace } = placeOf(cronJob);
  await run.beforeCreate?.(`${run.engine} target ${target} of cluster ${cluster} (namespace ${namespace})`);
  const job = await createRunJob(workloads, cronJob, run, runArgs(cluster, target, run.work));
  const follower = new JobFollower(workloads, new Pods(client), namespace, job.name, run);
  return { job: `${namespace}/${job.name}`, ...(await follower.follow()) };
}

function kube(env: NodeJS.ProcessEnv): { client: KubeClient; workloads: Workloads } {
  const client = new KubeClient(env["KUBECONFIG"] ? { kubeconfig: env["KUBECONFIG"] } : {});
  return { client, workloads: new Workloads(client) };
}

/**
 * The CronJob a run's Job is made from. A restore runs from the target's restore-drill CronJob when it has one: it
 * alone carries the age identity of an encrypted target. Same image, same database and bucket settings.
 */
async function runCronJob(
  workloads: Workloads,
  run: Pick<InClusterRun, "engine" | "cluster" | "target" | "work">,
  where: string,
): Promise<CronJobWithTemplate> {
  const all = await workloads.cronJobsWithTemplates(
    `${LABELS.managedBy}=${MANAGED_BY},${LABELS.engine}=${run.engine}`,
  );
  const chosen = chooseCronJob(
    all.filter((c) => c.metadata.labels?.[LABELS.job] === undefined),
    run,
    where,
  );
  return (
    (run.work[0] === "--restore"
      ? all.find(
          (c) =>
            c.metadata.labels?.[LABELS.job] === "verify" &&
            c.metadata.namespace === chosen.metadata.namespace &&
            c.metadata.labels[LABELS.target] === chosen.metadata.labels?.[LABELS.target] &&
            c.metadata.annotations?.[ANNOTATIONS.cluster] ===
              chosen.metadata.annotations?.[ANNOTATIONS.cluster],
        )
      : undefined) ?? chosen
  );
}

function placeOf(cronJob: CronJobWithTemplate): { cluster: string; target: string; namespace: string } {
  return {
    cluster: cronJob.metadata.annotations?.[ANNOTATIONS.cluster] ?? "",
    target: cronJob.metadata.labels?.[LABELS.target] ?? "",
    namespace: cronJob.metadata.namespace,
  };
}

interface RunIdentity {
  readonly runId: string;
  readonly requestedBy: string;
}

function newRunIdentity(env: NodeJS.ProcessEnv): RunIdentity {
  return {
    runId: `cli-${new Date().toISOString().replace(/[-:.]/g, "").slice(0, 15)}-${randomBytes(3).toString("hex")}`,
    requestedBy: operator(env),
  };
}

/** Creates the never-retried Job of a run from `cronJob`, with `args`, and says how to follow it. */
async function createRunJob(
  workloads: Workloads,
  cronJob: CronJobWithTemplate,
  run: Pick<InClusterRun, "env" | "note">,
  args: string[],
  extra: { identity?: RunIdentity; claim?: OneOffJob["claim"] } = {},
): Promise<{ name: string }> {
  const { cluster, namespace } = placeOf(cronJob);
  const { runId, requestedBy } = extra.identity ?? newRunIdentity(run.env);
  const name = `${cronJob.metadata.name}-${sha256Hex(`${cluster}/${runId}`).slice(0, 10)}`;
  const job = jobFromCronJob(cronJob, {
    name,
    labels: { [IN_CLUSTER_LABEL]: "true" },
    annotations: { [REQUESTED_BY_ANNOTATION]: requestedBy, [RUN_ID_ANNOTATION]: runId },
    env: [
      { name: REQUEST_ENV.trigger, value: "request" },
      { name: REQUEST_ENV.requestId, value: runId },
      { name: REQUEST_ENV.requestedBy, value: requestedBy },
    ],
    args,
    backoffLimit: 0,
    ttlSecondsAfterFinished: KEEP_FINISHED_SECONDS,
    ...(extra.claim && { claim: extra.claim }),
  });
  await workloads.createJob(job);
  run.note(
    `created Job ${namespace}/${name} from CronJob ${cronJob.metadata.name}; following its log ` +
      `(Ctrl-C detaches, the Job goes on: kubectl logs -f -n ${namespace} job/${name})`,
  );
  return { name };
}

/** A physical restore in the cluster (`pg --restore --physical --in-cluster`): where its data directory goes. */
export interface PhysicalRestoreInCluster extends Omit<InClusterRun, "work"> {
  /** The backup id, or undefined for the newest base backup before the target point. */
  readonly id?: string | undefined;
  /** The engine's other restore flags (`--target-time T`, `--target-lsn L`), forwarded to `capsule run` as given. */
  readonly forwarded: readonly string[];
  /** The new PVC's size, a Kubernetes quantity. @default DEFAULT_RESTORE_PVC_SIZE */
  readonly pvcSize?: string | undefined;
  readonly storageClass?: string | undefined;
  /** The new PVC's name; it must not exist. @default derived from the target and the run */
  readonly pvcName?: string | undefined;
}

export interface PhysicalRestoreResult extends InClusterResult {
  /** `namespace/name` of the PVC holding the restored data directory. */
  readonly pvc: string;
}

/**
 * cnvrg's default PostgreSQL volume (80Gi): a copy of a full default volume fits. The laptop running `--in-cluster`
 * has no bucket access (ADR 0012), so it cannot read the backup's size; `--pvc-size` sets another.
 */
export const DEFAULT_RESTORE_PVC_SIZE = "80Gi";
/** Where the new PVC is mounted in the restore Job's pod, and the data directory inside it. */
export const RESTORE_MOUNT = "/restore";
export const RESTORE_DATA_DIR = `${RESTORE_MOUNT}/pgdata`;
const RESTORE_VOLUME = "restore";
const QUANTITY = /^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/**
 * `pg --restore --physical --in-cluster`: creates a new PVC, then a Job from the target's CronJob that mounts it at
 * /restore and runs `capsule run --restore … --physical --to-data-dir /restore/pgdata`, follows it, and on success
 * says how to run PostgreSQL from the PVC. An existing PVC is never written: a name that exists is refused before
 * anything is created. A failed restore leaves the PVC (and the Job, a day) for inspection; the database is untouched.
 */
export async function restorePhysicalInCluster(
  run: PhysicalRestoreInCluster,
): Promise<PhysicalRestoreResult> {
  const size = run.pvcSize ?? DEFAULT_RESTORE_PVC_SIZE;
  const problem = !QUANTITY.test(size)
    ? `--pvc-size must be a Kubernetes quantity such as 100Gi (got ${JSON.stringify(size)})`
    : run.storageClass !== undefined && !DNS_SUBDOMAIN.test(run.storageClass)
      ? `--storage-class must be a StorageClass name (got ${JSON.stringify(run.storageClass)})`
      : run.pvcName !== undefined && (!DNS_SUBDOMAIN.test(run.pvcName) || run.pvcName.length > 253)
        ? `--pvc-name must be a Kubernetes object name (got ${JSON.stringify(run.pvcName)})`
        : undefined;
  if (problem) throw new CapsuleError(ErrorCode.Config, problem);
  const { client, workloads } = kube(run.env);
  const claims = new VolumeClaims(client);
  const work = [
    "--restore",
    run.id ?? "latest",
    "--physical",
    "--to-data-dir",
    RESTORE_DATA_DIR,
    ...run.forwarded,
  ];
  const cronJob = await runCronJob(workloads, { ...run, work }, client.where);
  const { cluster, target, namespace } = placeOf(cronJob);
  const identity = newRunIdentity(run.env);
  const pvcName =
    run.pvcName ??
    shortName(`${cronJob.metadata.name}-restore`, sha256Hex(`${cluster}/${identity.runId}`).slice(0, 10));
  if (await claims.exists(namespace, pvcName)) throw reused(namespace, pvcName);
  await run.beforeCreate?.(
    `a new PVC ${namespace}/${pvcName} (${size}) from ${run.engine} target ${target} of cluster ${cluster}`,
  );
  try {
    await claims.create(restoreClaim(namespace, pvcName, size, run.storageClass, cluster, target, identity));
  } catch (error) {
    if (isAlreadyExists(error)) throw reused(namespace, pvcName);
    throw error;
  }
  run.note(
    `created PVC ${namespace}/${pvcName} (${size}${run.storageClass ? `, class ${run.storageClass}` : ""})`,
  );
  const job = await createRunJob(workloads, cronJob, run, runArgs(cluster, target, work), {
    identity,
    // The new PVC at RESTORE_MOUNT: the only writable place besides /tmp.
    claim: { name: RESTORE_VOLUME, claimName: pvcName, mountPath: RESTORE_MOUNT },
  });
  const follower = new JobFollower(workloads, new Pods(client), namespace, job.name, run);
  const outcome = await follower.follow();
  if (outcome.exitCode === 0) for (const line of pointDatabaseAt(namespace, pvcName, cronJob)) run.note(line);
  else
    run.note(
      `the database was not touched; PVC ${namespace}/${pvcName} is left for inspection (kubectl delete pvc -n ${namespace} ${pvcName})`,
    );
  return { job: `${namespace}/${job.name}`, pvc: `${namespace}/${pvcName}`, ...outcome };
}

function reused(namespace: string, name: string): CapsuleError {
  return new CapsuleError(
    ErrorCode.Config,
    `PersistentVolumeClaim ${namespace}/${name} exists: a physical restore writes only into a new PVC; choose another --pvc-name`,
  );
}

/** `<head>-<hash>`, at most 63 characters: a valid name and label value however long the CronJob's name. */
function shortName(head: string, hash: string): string {
  return `${head.slice(0, 63 - hash.length - 1).replace(/[^a-z0-9]+$/, "")}-${hash}`;
}

function restoreClaim(
  namespace: string,
  name: string,
  size: string,
  storageClass: string | undefined,
  cluster: string,
  target: string,
  identity: RunIdentity,
): Named<V1PersistentVolumeClaim> {
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: {
      name,
      namespace,
      // Not managed-by capsule: the reconciler must never prune what an operator restored.
      labels: {
        [LABELS.name]: "capsule",
        [LABELS.cluster]: labelValue(cluster),
        [LABELS.target]: labelValue(target),
        [IN_CLUSTER_LABEL]: "true",
      },
      annotations: {
        [ANNOTATIONS.cluster]: cluster,
        [REQUESTED_BY_ANNOTATION]: identity.requestedBy,
        [RUN_ID_ANNOTATION]: identity.runId,
      },
    },
    spec: {
      accessModes: ["ReadWriteOnce"],
      resources: { requests: { storage: size } },
      ...(storageClass !== undefined && { storageClassName: storageClass }),
    },
  };
}

/** What the operator does next: the restored data directory is a stopped, consistent cluster on the new PVC. */
function pointDatabaseAt(namespace: string, pvcName: string, cronJob: CronJobWithTemplate): string[] {
  const uid = cronJob.spec?.jobTemplate.spec?.template.spec?.securityContext?.runAsUser;
  return [
    `restored: PVC ${namespace}/${pvcName} holds a stopped PostgreSQL data directory at pgdata/ (${RESTORE_DATA_DIR} in the Job).`,
    "to run the database from it:",
    `  1. stop PostgreSQL (kubectl scale -n ${namespace} deploy/<postgres> --replicas=0, or its StatefulSet)`,
    `  2. in its pod spec, replace the data volume's claimName (cnvrg: spec.dbs.pg.pvcName, e.g. pg-storage) with ${pvcName}` +
      " and point PGDATA (or the mount's subPath) at pgdata",
    `  3. the files belong to uid ${uid ?? "of the restore pod"}: run PostgreSQL as that uid or chown them first (PostgreSQL refuses a data directory it does not own)`,
    `  4. start it (scale back to 1), or by hand in a pod that mounts the PVC: pg_ctl start -D <mount>/pgdata`,
    "the old PVC is untouched: keep it until the restored database is checked.",
  ];
}

/** The target's backup CronJob: by cluster and target, or the only one; otherwise one line listing the choices. */
export function chooseCronJob(
  cronJobs: readonly CronJobWithTemplate[],
  run: Pick<InClusterRun, "engine" | "cluster" | "target">,
  where: string,
): CronJobWithTemplate {
  const clusterOf = (c: CronJobWithTemplate) =>
    c.metadata.annotations?.[ANNOTATIONS.cluster] ?? c.metadata.labels?.[LABELS.cluster] ?? "";
  const targetOf = (c: CronJobWithTemplate) => c.metadata.labels?.[LABELS.target] ?? "";
  const clusters = [...new Set(cronJobs.map(clusterOf))].sort();
  if (clusters.length === 0) {
    throw new CapsuleError(
      ErrorCode.NotFound,
      `no capsule CronJob for ${run.engine} in kube context ${where}: is capsule start running there?`,
    );
  }
  const cluster = run.cluster ?? (clusters.length === 1 ? clusters[0] : undefined);
  if (cluster === undefined) {
    throw new CapsuleError(
      ErrorCode.Config,
      `${clusters.length} clusters have ${run.engine} CronJobs in ${where}: pass --cluster with one of ${clusters.join(", ")}`,
    );
  }
  const ofCluster = cronJobs.filter((c) => clusterOf(c) === cluster);
  if (ofCluster.length === 0) {
    throw new CapsuleError(
      ErrorCode.NotFound,
      `no ${run.engine} CronJob of cluster ${cluster} in ${where} (clusters: ${clusters.join(", ")})`,
    );
  }
  const targets = ofCluster.map(targetOf).sort();
  const chosen = run.target
    ? ofCluster.find((c) => targetOf(c) === run.target)
    : ofCluster.length === 1
      ? ofCluster[0]
      : undefined;
  if (!chosen) {
    throw new CapsuleError(
      run.target ? ErrorCode.NotFound : ErrorCode.Config,
      run.target
        ? `cluster ${cluster} has no ${run.engine} target ${run.target} (targets: ${targets.join(", ")})`
        : `cluster ${cluster} has ${targets.length} ${run.engine} targets: pass --target with one of ${targets.join(", ")}`,
    );
  }
  return chosen;
}

/** Who asked, for the Job's annotation and the statefile: the local user at the local host. */
function operator(env: NodeJS.ProcessEnv): string {
  let user = env["USER"] ?? env["LOGNAME"];
  try {
    user ??= userInfo().username;
  } catch {
    user ??= "unknown";
  }
  return `${user}@${hostname()} (capsule --in-cluster)`;
}

/** Waits for the Job's pod, follows its log (resuming a cut stream), and reads how its container ended. */
class JobFollower {
  private lastStamp: string | undefined;
  private lastPlain: string | undefined;

  constructor(
    private readonly workloads: Workloads,
    private readonly pods: Pods,
    private readonly namespace: string,
    private readonly name: string,
    private readonly run: Omit<InClusterRun, "work">,
  ) {}

  private get pollMs(): number {
    return this.run.pollMs ?? 1000;
  }

  async follow(): Promise<Omit<InClusterResult, "job">> {
    const pod = await this.startedPod();
    const container = pod.container?.name ?? "capsule";
    for (;;) {
      this.lastStamp = await this.pods.followLog(
        this.namespace,
        pod.name,
        container,
        (line) => this.line(line),
        this.lastStamp,
      );
      const now = (await this.pods.ofJob(this.namespace, this.name)).find((p) => p.name === pod.name);
      const exitCode = now?.container?.exitCode;
      if (now && exitCode !== undefined) return this.ended(now, exitCode);
      if (!now) throw this.lost("its pod is gone");
      // Ended without a container exit code (evicted, node lost): the phase is all there is to go by.
      if (now.phase === "Succeeded" || now.phase === "Failed")
        return this.ended(now, now.phase === "Succeeded" ? 0 : 1);
      // The stream ended while the container runs: the connection was cut. Resume after the last line.
      await sleep(this.pollMs);
    }
  }

  private line(line: string): void {
    if (line && !line.startsWith("{")) this.lastPlain = line;
    this.run.logLine(line);
  }

  private ended(pod: PodState, exitCode: number): Omit<InClusterResult, "job"> {
    if (exitCode !== 0) {
      const why = [pod.container?.reason, pod.container?.message].filter(Boolean).join(": ");
      this.run.note(
        `Job ${this.namespace}/${this.name} failed: exit code ${exitCode}${why ? ` (${why})` : ""}`,
      );
    }
    return { exitCode, ...(exitCode === 0 && this.lastPlain !== undefined && { result: this.lastPlain }) };
  }

  /** The Job's pod once its container has started (or ended); fails early when it cannot start. */
  private async startedPod(): Promise<PodState> {
    const deadline = performance.now() + (this.run.startTimeoutMs ?? 10 * 60_000);
    let reported = "";
    for (;;) {
      // The Job's status is read before its pods: a pod that ran and failed in between is then still seen.
      const status = await this.workloads.jobStatus(this.namespace, this.name);
      const pod = (await this.pods.ofJob(this.namespace, this.name)).at(-1);
      if (pod && (pod.phase === "Running" || pod.phase === "Succeeded" || pod.phase === "Failed")) return pod;
      const waiting = pod?.container?.waiting ? pod.container : undefined;
      if (waiting?.reason && CANNOT_START.has(waiting.reason)) {
        throw this.lost(
          `its pod cannot start: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ""}`,
        );
      }
      if (waiting?.reason && waiting.reason !== reported) {
        reported = waiting.reason;
        this.run.note(`pod ${pod?.name ?? "?"} is waiting: ${waiting.reason}`);
      }
      if (status === undefined) throw this.lost("the Job was deleted");
      if (status.phase === "failed") {
        const why = [status.reason, status.message].filter(Boolean).join(": ");
        throw this.lost(`the Job failed before its pod ran${why ? ` (${why})` : ""}`);
      }
      if (performance.now() > deadline) throw this.lost("its pod did not start in time");
      await sleep(this.pollMs);
    }
  }

  private lost(why: string): CapsuleError {
    return new CapsuleError(
      ErrorCode.JobFailed,
      `Job ${this.namespace}/${this.name}: ${why} (kubectl describe job -n ${this.namespace} ${this.name})`,
    );
  }
}

/** Waiting reasons that will not resolve on their own. */
const CANNOT_START = new Set([
  "ErrImagePull",
  "ImagePullBackOff",
  "InvalidImageName",
  "CreateContainerConfigError",
  "CreateContainerError",
]);
