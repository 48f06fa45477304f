import { messageOf } from "../domain/errors.js";
import { redact } from "../redact.js";
import type { BackupEntry, BackupStore } from "../storage/backup-store.js";
import type { RestoreRecord } from "../domain/statefile.js";
import { interruptible, InterruptedError, interruptionOf } from "../util/interruption.js";

/** Who asked for a restore that ran inside the cluster: a bucket request, or an operator's `--in-cluster`. */
export interface RestoreTrigger {
  readonly requestId?: string;
  readonly requestedBy?: string;
}

/** Appends a restore to the backup's statefile, so the bucket remembers where its data went and how it went. */
export async function recordRestore(
  store: BackupStore,
  entry: BackupEntry,
  record: {
    to: string;
    result: RestoreRecord["result"];
    message?: string;
    trigger?: RestoreTrigger;
  },
): Promise<void> {
  await store.update(entry.ref, (s) => {
    s.restores.push({
      at: store.now().toISOString(),
      to: redact(record.to),
      result: record.result,
      ...(record.message ? { message: redact(record.message) } : {}),
      ...(record.trigger?.requestId ? { requestId: record.trigger.requestId } : {}),
      ...(record.trigger?.requestedBy ? { requestedBy: redact(record.trigger.requestedBy) } : {}),
    });
  });
}

/**
 * Runs a restore under SIGINT/SIGTERM handling (util/interruption.ts) and appends its outcome — succeeded, failed
 * or interrupted — to the backup's statefile. The recording is inside the signal window: a signal that arrives
 * after the restore finished neither kills capsule before the bucket knows, nor turns a done restore into a failure.
 */
export async function recordedRestore<T>(
  store: BackupStore,
  entry: BackupEntry,
  record: { to: string; trigger?: RestoreTrigger },
  work: (signal: AbortSignal) => Promise<T>,
  options: { notice?: (line: string) => void } = {},
): Promise<T> {
  return interruptible(async (signal) => {
    let outcome: T;
    try {
      outcome = await work(signal);
    } catch (error) {
      const interruption = interruptionOf(signal);
      await recordRestore(store, entry, {
        ...record,
        result: interruption || error instanceof InterruptedError ? "interrupted" : "failed",
        message:
          interruption && !(error instanceof InterruptedError)
            ? `interrupted by ${interruption.signal}: ${messageOf(error)}`
            : messageOf(error),
      }).catch(() => undefined);
      throw error;
    }
    await recordRestore(store, entry, { ...record, result: "succeeded" });
    return outcome;
  }, options);
}
