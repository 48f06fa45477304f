/**
 * FAKE kubelet and Job controller for tests, beside the fake API server: each new Job gets a pod, and the pod's
 * container is run for real — its args through capsule (in this process, as the image's entrypoint would), its env
 * built the way the kubelet builds it (plain values; secretKeyRefs from the fake's Secrets, a missing one leaving
 * the container waiting with CreateContainerConfigError) — against the harness' real servers. Output becomes the
 * pod's log line by line; the end becomes the pod's terminated state and the Job's Complete/Failed condition.
 */
import { randomBytes } from "node:crypto";
import { PassThrough } from "node:stream";
import { runCli } from "../../src/commands/index.js";
import type { FakeKubeApiServer } from "./kube-apiserver.js";
import { resolveContainerEnv, type EnvVar } from "./pod-env.js";

interface Container {
  name: string;
  args?: string[];
  env?: EnvVar[];
}

interface JobObject {
  metadata?: { name?: string; namespace?: string; uid?: string };
  spec?: {
    template?: { metadata?: { labels?: Record<string, string> }; spec?: { containers?: Container[] } };
  };
  status?: { conditions?: unknown[] };
}

export interface FakeKubeletOptions {
  /** Env every container gets besides its own (PATH, test-only settings). */
  readonly baseEnv?: Record<string, string>;
  /** @default 50 */
  readonly pollMs?: number;
}

export class FakeKubelet {
  private readonly seen = new Set<string>();
  private readonly running = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  /** Pods the kubelet made: job "namespace/name" → pod name. */
  readonly pods = new Map<string, string>();
  /** The next pod is evicted once its container has started: phase Failed, no container exit code. */
  evictNext = false;

  constructor(
    private readonly api: FakeKubeApiServer,
    private readonly options: FakeKubeletOptions = {},
  ) {}

  start(): this {
    this.timer = setInterval(() => this.sync(), this.options.pollMs ?? 50);
    return this;
  }

  /** Stops looking for Jobs and waits for the pods that run. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await Promise.all(this.running);
  }

  private sync(): void {
    for (const job of this.api.list("jobs") as JobObject[]) {
      const namespace = job.metadata?.namespace ?? "";
      const name = job.metadata?.name ?? "";
      const key = `${namespace}/${name}`;
      if (this.seen.has(key) || job.status?.conditions?.length) continue;
      this.seen.add(key);
      const run = this.runPod(namespace, name, job).finally(() => this.running.delete(run));
      this.running.add(run);
    }
  }

  private async runPod(namespace: string, jobName: string, job: JobObject): Promise<void> {
    const podName = `${jobName}-${randomBytes(3).toString("hex").slice(0, 5)}`;
    this.pods.set(`${namespace}/${jobName}`, podName);
    const container = job.spec?.template?.spec?.containers?.[0];
    const labels = {
      ...job.spec?.template?.metadata?.labels,
      "job-name": jobName,
      "batch.kubernetes.io/job-name": jobName,
      "controller-uid": job.metadata?.uid ?? "",
    };
    const pod = (status: Record<string, unknown>) =>
      this.api.put("pods", {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: podName, namespace, labels },
        spec: { containers: [container ?? {}], restartPolicy: "Never" },
        status,
      });
    const containerName = container?.name ?? "capsule";
    const waiting = (reason: string, message?: string) =>
      pod({
        phase: "Pending",
        containerStatuses: [
          { name: containerName, ready: false, state: { waiting: { reason, ...(message && { message }) } } },
        ],
      });
    waiting("ContainerCreating");
    let env: Record<string, string>;
    try {
      env = resolveContainerEnv(
        container?.env ?? [],
        (name) => this.secretValues(namespace, name),
        namespace,
      );
    } catch (error) {
      // The real kubelet leaves the container waiting and retries; the Job stays active.
      waiting("CreateContainerConfigError", (error as Error).message);
      return;
    }
    pod({
      phase: "Running",
      containerStatuses: [{ name: containerName, ready: true, state: { running: { startedAt: now() } } }],
    });
    this.api.startLog(namespace, podName);
    if (this.evictNext) {
      this.evictNext = false;
      this.api.appendLog(namespace, podName, "started; the node is about to go away");
      pod({ phase: "Failed", reason: "Evicted", message: "The node was low on resource: memory." });
      this.api.endLog(namespace, podName);
      this.api.finishJob(namespace, jobName, "Failed");
      return;
    }
    const exitCode = await this.execute(container?.args ?? [], { ...this.options.baseEnv, ...env }, (line) =>
      this.api.appendLog(namespace, podName, line),
    );
    pod({
      phase: exitCode === 0 ? "Succeeded" : "Failed",
      containerStatuses: [
        {
          name: containerName,
          ready: false,
          state: {
            terminated: { exitCode, reason: exitCode === 0 ? "Completed" : "Error", finishedAt: now() },
          },
        },
      ],
    });
    this.api.endLog(namespace, podName);
    this.api.finishJob(namespace, jobName, exitCode === 0 ? "Complete" : "Failed");
  }

  /** The Secret's decoded values, from the fake API server. */
  private secretValues(namespace: string, name: string): Record<string, string> | undefined {
    const secret = this.api.get("secrets", namespace, name) as { data?: Record<string, string> } | undefined;
    if (!secret) return undefined;
    return Object.fromEntries(
      Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]),
    );
  }

  /** Runs the image's entrypoint (`capsule`) with the container's args; every output line goes to the log. */
  private async execute(
    args: string[],
    env: Record<string, string>,
    line: (text: string) => void,
  ): Promise<number> {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    for (const stream of [stdout, stderr]) {
      let pending = "";
      stream.on("data", (chunk: Buffer) => {
        const lines = (pending + chunk.toString()).split("\n");
        pending = lines.pop() ?? "";
        for (const l of lines) line(l);
      });
      stream.on("end", () => pending && line(pending));
    }
    const code = await runCli(args, { stdin: new PassThrough(), stdout, stderr, env });
    stdout.end();
    stderr.end();
    return code;
  }
}

function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, "Z");
}
