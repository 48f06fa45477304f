/** Production adapters pointed at a fake API server, and a logger that keeps its lines for assertions. */
import { Events } from "../../src/k8s/events.js";
import { KubeClient } from "../../src/k8s/kube-client.js";
import { Workloads } from "../../src/k8s/workloads.js";
import { createLogger, type Logger } from "../../src/log.js";
import type { FakeKubeApiServer } from "./kube-apiserver.js";

export async function clientsFor(fake: FakeKubeApiServer, requestTimeoutMs = 2000) {
  const kube = new KubeClient({ kubeconfig: await fake.kubeconfigFile(), requestTimeoutMs });
  return { kube, workloads: new Workloads(kube), events: new Events(kube, "test-replica") };
}

export interface CapturedLogger extends Logger {
  readonly lines: Array<Record<string, unknown>>;
  has(msg: string | RegExp): boolean;
}

/** A logger that records JSON records instead of printing them (set CAPSULE_TEST_LOG=1 to print as well). */
export function capturedLogger(name = "test"): CapturedLogger {
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger({
    level: "debug",
    base: { logger: name },
    write: (line) => {
      lines.push(JSON.parse(line) as Record<string, unknown>);
      if (process.env["CAPSULE_TEST_LOG"]) process.stderr.write(`${line}\n`);
    },
  });
  return {
    ...log,
    lines,
    has: (msg) =>
      lines.some((l) => (typeof msg === "string" ? l["msg"] === msg : msg.test(String(l["msg"])))),
  };
}

/** Polls `check` until it holds or `timeoutMs` passes. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = "condition",
): Promise<void> {
  // The monotonic clock: a wall clock stepped forward (NTP, a paused VM) must not end the wait before it began.
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
