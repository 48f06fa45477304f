/**
 * The one restore flow, for every engine and every caller (the CLI's `--restore`, `capsule run --restore` in the
 * target's own pod for `--in-cluster` and bucket requests): only a restorable backup, its decryption known to work
 * and the operator's yes before anything is touched; then the engine's restore under SIGINT/SIGTERM handling, its
 * outcome — succeeded, failed or interrupted — appended to the backup's statefile (docs/adr/0015).
 */
import { ErrorCode, FieldError } from "../domain/errors.js";
import type { RestorePlan, RestoreResult } from "../engines/engine.js";
import type { Statefile } from "../domain/statefile.js";
import type { BackupEntry, BackupStore } from "../storage/backup-store.js";
import { recordedRestore, type RestoreTrigger } from "./record-restore.js";

export interface RestoreRequest {
  /**
   * Restore a backup that did not succeed: an operator's last resort. Left undefined where it is not offered (a
   * bucket request), so the refusal does not suggest it.
   */
  readonly force?: boolean;
  /** Who asked, when it was not the operator at this terminal. */
  readonly trigger?: RestoreTrigger;
  /** Asked with the plan's question once the backup is known restorable; rejects to cancel. */
  readonly confirm?: (question: string) => Promise<void>;
  readonly onPhase?: (phase: string) => void;
  /** Lines for the operator that are not phases: leftovers found, what an interruption left. */
  readonly onNotice?: (line: string) => void;
}

/**
 * Restores `entry` as `planFor` decides from its statefile (the engine's `planRestore`): the plan is made only once
 * the backup is known restorable, so it can rely on what the statefile records.
 */
export async function restoreBackup(
  store: BackupStore,
  entry: BackupEntry,
  planFor: (statefile: Statefile) => RestorePlan,
  request: RestoreRequest = {},
): Promise<RestoreResult> {
  if (entry.state !== "succeeded" && !request.force) {
    throw new FieldError(
      ErrorCode.NotRestorable,
      "force",
      `${entry.ref.backupId} is ${entry.state}: only succeeded backups are restored` +
        (request.force === undefined ? "" : " ({force} to try anyway)"),
    );
  }
  const source = store.artifactSource(entry);
  const plan = planFor(source.statefile);
  // Asking to confirm a restore that cannot decrypt would waste the operator's yes.
  await source.checkReadable();
  await request.confirm?.(plan.question);
  const onPhase = request.onPhase ?? (() => undefined);
  const onNotice = request.onNotice ?? (() => undefined);
  return recordedRestore(
    store,
    entry,
    { to: plan.to, ...(request.trigger && { trigger: request.trigger }) },
    (signal) => plan.run(source, { signal, onPhase, onNotice }),
    { notice: onNotice },
  );
}
