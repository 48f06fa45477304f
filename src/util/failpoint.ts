/**
 * Named failpoints for fault-injection tests (as etcd's gofail and TiKV's fail-rs have them): a test that must kill
 * capsule at one exact instant — inside the swap transaction, between two steps — cannot hit it by timing. When
 * `CAPSULE_FAILPOINTS` lists a point's name (comma-separated), capsule prints `capsule: failpoint NAME reached` on
 * stderr when it gets there and waits until it is signalled or killed; the test then sends the fault. Unset (always,
 * in production), a failpoint is one environment lookup and nothing else.
 */
import { throwIfInterrupted } from "./interruption.js";

export const FAILPOINTS_ENV = "CAPSULE_FAILPOINTS";

export async function failpoint(name: string, signal?: AbortSignal): Promise<void> {
  const armed = process.env[FAILPOINTS_ENV];
  if (!armed || !armed.split(",").includes(name)) return;
  process.stderr.write(`capsule: failpoint ${name} reached\n`);
  await new Promise<void>((resolve) => {
    // Held until interrupted; a SIGKILL needs no cooperation. The timer keeps the event loop alive.
    const timer = setInterval(() => undefined, 60_000);
    const release = () => {
      clearInterval(timer);
      resolve();
    };
    if (signal?.aborted) release();
    signal?.addEventListener("abort", release, { once: true });
  });
  throwIfInterrupted(signal);
}
