import { redact } from "../redact.js";
import type { BackupEntry, BackupStore } from "../storage/backup-store.js";
import type { RestoreRecord } from "../storage/statefile.js";

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
