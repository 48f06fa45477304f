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
import { sha256Hex } from "../compiler/canonical-json.js";
import { ANNOTATIONS, LABELS, MANAGED_BY } from "../compiler/cronjob.js";
import { jobFromCronJob } from "../compiler/job-from-cronjob.js";
import { CapsuleError, ErrorCode } from "../domain/errors.js";
import { KubeClient } from "../k8s/kube-client.js";
import { Pods, type PodState } from "../k8s/pods.js";
import { Workloads, type CronJobWithTemplate } from "../k8s/workloads.js";
import { REQUEST_ENV, runArgs } from "../plan/run-contract.js";
import type { EngineName } from "../domain/backup.js";

export const IN_CLUSTER_LABEL = "capsule.cnvrg.io/in-cluster";
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
  const client = new KubeClient(run.env["KUBECONFIG"] ? { kubeconfig: run.env["KUBECONFIG"] } : {});
  const workloads = new Workloads(client);
  const all = await workloads.cronJobsWithTemplates(
    `${LABELS.managedBy}=${MANAGED_BY},${LABELS.engine}=${run.engine}`,
  );
  const chosen = chooseCronJob(
    all.filter((c) => c.metadata.labels?.[LABELS.job] === undefined),
    run,
    client.where,
  );
  // A restore runs from the target's restore-drill CronJob when it has one: it alone carries the age identity
  // of an encrypted target. Same image, same database and bucket settings.
  const cronJob =
    (run.work[0] === "--restore"
      ? all.find(
          (c) =>
            c.metadata.labels?.[LABELS.job] === "verify" &&
            c.metadata.namespace === chosen.metadata.namespace &&
            c.metadata.labels[LABELS.target] === chosen.metadata.labels?.[LABELS.target] &&
            c.metadata.annotations?.[ANNOTATIONS.cluster] ===
              chosen.metadata.annotations?.[ANNOTATIONS.cluster],
        )
      : undefined) ?? chosen;
  const cluster = cronJob.metadata.annotations?.[ANNOTATIONS.cluster] ?? "";
  const target = cronJob.metadata.labels?.[LABELS.target] ?? "";
  const requestedBy = operator(run.env);
  const runId = `cli-${new Date().toISOString().replace(/[-:.]/g, "").slice(0, 15)}-${randomBytes(3).toString("hex")}`;
  const namespace = cronJob.metadata.namespace;
  await run.beforeCreate?.(`${run.engine} target ${target} of cluster ${cluster} (namespace ${namespace})`);
  const name = `${cronJob.metadata.name}-${sha256Hex(`${cluster}/${runId}`).slice(0, 10)}`;
  await workloads.createJob(
    jobFromCronJob(cronJob, {
      name,
      labels: { [IN_CLUSTER_LABEL]: "true" },
      annotations: { "capsule.cnvrg.io/requested-by": requestedBy, "capsule.cnvrg.io/run-id": runId },
      env: [
        { name: REQUEST_ENV.trigger, value: "request" },
        { name: REQUEST_ENV.requestId, value: runId },
        { name: REQUEST_ENV.requestedBy, value: requestedBy },
      ],
      args: runArgs(cluster, target, run.work),
      backoffLimit: 0,
      ttlSecondsAfterFinished: KEEP_FINISHED_SECONDS,
    }),
  );
  const job = `${namespace}/${name}`;
  run.note(
    `created Job ${job} from CronJob ${cronJob.metadata.name}; following its log ` +
      `(Ctrl-C detaches, the Job goes on: kubectl logs -f -n ${namespace} job/${name})`,
  );
  const follower = new JobFollower(workloads, new Pods(client), namespace, name, run);
  return { job, ...(await follower.follow()) };
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
    private readonly run: InClusterRun,
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
    const deadline = Date.now() + (this.run.startTimeoutMs ?? 10 * 60_000);
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
      if (Date.now() > deadline) throw this.lost("its pod did not start in time");
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
