import { redact } from "../redact.js";
import type { BackupEntry, BackupStore } from "../storage/backup-store.js";

/** Appends a restore to the backup's statefile, so the bucket remembers where its data went and how it went. */
export async function recordRestore(
  store: BackupStore,
  entry: BackupEntry,
  record: { to: string; result: "succeeded" | "failed"; message?: string },
): Promise<void> {
  await store.update(entry.ref, (s) => {
    s.restores.push({
      at: store.now().toISOString(),
      to: redact(record.to),
      result: record.result,
      ...(record.message ? { message: redact(record.message) } : {}),
    });
  });
}
