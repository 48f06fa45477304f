/**
 * The pods of a Job and their logs, as `--in-cluster` needs them: which pod runs the Job, whether its container has
 * started, how it ended (exit code, reason), and its log followed to the end. Log lines are requested with
 * timestamps so that a follow stream the API server (or a proxy) cuts short can be resumed without repeating or
 * losing a line.
 */
import { PassThrough } from "node:stream";
import { Log, type V1Pod } from "@kubernetes/client-node";
import type { KubeClient } from "./kube-client.js";
import { toKubeApiError } from "./kube-client.js";

export type PodPhase = "Pending" | "Running" | "Succeeded" | "Failed" | "Unknown";

export interface PodState {
  readonly name: string;
  readonly phase: PodPhase;
  /** The first container's state, as far as capsule cares. */
  readonly container?: {
    readonly name: string;
    /** Set once the container has terminated. */
    readonly exitCode?: number;
    /** Why it terminated (`Completed`, `Error`, `OOMKilled`) or why it waits (`ImagePullBackOff`…). */
    readonly reason?: string;
    readonly message?: string;
    readonly waiting: boolean;
  };
}

/** The label the Job controller puts on the pods of a Job (both spellings; the prefixed one since 1.27). */
const JOB_NAME_LABEL = "job-name";

export class Pods {
  constructor(private readonly client: KubeClient) {}

  /** The Job's pods, oldest first. */
  async ofJob(namespace: string, jobName: string): Promise<PodState[]> {
    const list = await this.client.call(`list pods of Job ${namespace}/${jobName}`, () =>
      this.client.core.listNamespacedPod({ namespace, labelSelector: `${JOB_NAME_LABEL}=${jobName}` }),
    );
    return list.items
      .sort((a, b) =>
        String(a.metadata?.creationTimestamp ?? "").localeCompare(
          String(b.metadata?.creationTimestamp ?? ""),
        ),
      )
      .map(podState);
  }

  /**
   * Writes the container's log, line by line, until the stream ends (the container exited, or the connection
   * was cut). Lines at or before `after` (a timestamp this returned before) are skipped. Resolves with the
   * timestamp of the last line written, to resume from.
   */
  async followLog(
    namespace: string,
    pod: string,
    container: string,
    writeLine: (line: string) => void,
    after?: string,
  ): Promise<string | undefined> {
    const sink = new PassThrough();
    let last = after;
    let pending = "";
    const emit = (raw: string) => {
      const space = raw.indexOf(" ");
      const stamp = space > 0 ? raw.slice(0, space) : "";
      if (!isTimestamp(stamp)) return writeLine(raw);
      if (last !== undefined && compareTimestamps(stamp, last) <= 0) return;
      last = stamp;
      writeLine(raw.slice(space + 1));
    };
    const ended = new Promise<void>((resolve, reject) => {
      sink.on("data", (chunk: Buffer) => {
        const lines = (pending + chunk.toString("utf8")).split("\n");
        pending = lines.pop() ?? "";
        for (const line of lines) emit(line);
      });
      sink.on("end", resolve);
      sink.on("error", reject);
    });
    try {
      await new Log(this.client.kubeConfig).log(namespace, pod, container, sink, {
        follow: true,
        timestamps: true,
        ...(after !== undefined && { sinceTime: after.replace(/\.\d+Z$/, "Z") }),
      });
    } catch (error) {
      throw toKubeApiError(`follow the log of pod ${namespace}/${pod}`, error);
    }
    await ended;
    if (pending) emit(pending);
    return last;
  }
}

function podState(pod: V1Pod): PodState {
  const status = pod.status?.containerStatuses?.[0];
  const terminated = status?.state?.terminated;
  const waiting = status?.state?.waiting;
  const detail = terminated ?? waiting;
  return {
    name: pod.metadata?.name ?? "",
    phase: (pod.status?.phase as PodPhase | undefined) ?? "Pending",
    ...(status && {
      container: {
        name: status.name,
        ...(terminated && { exitCode: terminated.exitCode }),
        ...(detail?.reason && { reason: detail.reason }),
        ...(detail?.message && { message: detail.message }),
        waiting: waiting !== undefined,
      },
    }),
  };
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

function isTimestamp(text: string): boolean {
  return RFC3339.test(text);
}

/** RFC 3339 timestamps with any number of fractional digits (RFC3339Nano trims trailing zeros). */
export function compareTimestamps(a: string, b: string): number {
  const split = (t: string): [string, string] => {
    const m = /^(.*?)(?:\.(\d+))?Z$/.exec(t);
    return [m?.[1] ?? t, (m?.[2] ?? "").padEnd(9, "0")];
  };
  const [sa, fa] = split(a);
  const [sb, fb] = split(b);
  return sa < sb ? -1 : sa > sb ? 1 : fa < fb ? -1 : fa > fb ? 1 : 0;
}
