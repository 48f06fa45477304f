/**
 * Proof that a backup restores (issue 8): the artifact's sha256 first, then the engine's restore drill into a
 * target that cannot harm production, compared with the fingerprint taken at backup time. The outcome — verified
 * or failed, when, how, what differed — is written into the statefile, so the bucket itself says which backups
 * have been proven. An interrupted drill proves nothing either way: it records nothing, so a backup is never marked
 * failed (and retention never passes it over) because an operator pressed Ctrl-C.
 */
import type { EngineName } from "../domain/backup.js";
import { CapsuleError, ErrorCode, messageOf } from "../domain/errors.js";
import type { DrillResult, Engine, Fields } from "../engines/engine.js";
import { redact } from "../redact.js";
import type { BackupEntry, BackupStore } from "../storage/backup-store.js";
import type { Statefile } from "../domain/statefile.js";
import { drillPointInTime } from "./point-in-time.js";
import { interruptible, InterruptedError, interruptionOf } from "../util/interruption.js";

export type { DrillResult };

/**
 * The backup `id` names, or with "latest" the newest succeeded one (of `scope.target`, if given): only a succeeded
 * backup is worth a drill.
 */
export async function backupToVerify(
  store: BackupStore,
  scope: { cluster: string; engine: EngineName; target?: string },
  id: string,
): Promise<BackupEntry> {
  const entry =
    id === "latest"
      ? (await store.list(scope)).find((e) => e.state === "succeeded")
      : await store.get({ cluster: scope.cluster, engine: scope.engine, backupId: id });
  if (!entry) {
    throw new CapsuleError(
      ErrorCode.NotFound,
      `no succeeded backup to verify for cluster ${scope.cluster}${scope.target ? `, target ${scope.target}` : ""}`,
    );
  }
  if (entry.state !== "succeeded") {
    throw new CapsuleError(
      ErrorCode.NotRestorable,
      `${entry.ref.backupId} is ${entry.state}: only succeeded backups are verified`,
    );
  }
  return entry;
}

/** `verifyBackup` with the engine's drill: what every caller (the CLI, a scheduled drill) runs. */
export function verifyWithEngine(
  store: BackupStore,
  entry: BackupEntry,
  engine: Engine,
  fields: Fields,
  env: NodeJS.ProcessEnv,
  options: { notice?: (line: string) => void; onPhase?: (phase: string) => void } = {},
): Promise<Statefile["verification"]> {
  const onPhase = options.onPhase ?? (() => undefined);
  return verifyBackup(
    store,
    entry,
    (signal) => {
      const context = { signal, onPhase, ...(options.notice && { onNotice: options.notice }) };
      // A physical base backup is proven with its WAL, to the newest point (docs/adr/0021).
      return entry.statefile?.kind === "physical"
        ? drillPointInTime(store, entry, engine, context)
        : engine.drill(store.artifactSource(entry), fields, env, context);
    },
    options.notice ? { notice: options.notice } : {},
  );
}

export async function verifyBackup(
  store: BackupStore,
  entry: BackupEntry,
  drill: (signal: AbortSignal) => Promise<DrillResult>,
  options: { notice?: (line: string) => void } = {},
): Promise<Statefile["verification"]> {
  const encrypted = entry.statefile?.artifact?.encryption.type === "age";
  let method = encrypted
    ? "sha256 of the stored artifact, age decryption and sha256 of the plaintext"
    : "sha256 of the stored artifact";
  // The statefile update is inside the signal window too: a signal after the drill never kills capsule first.
  return interruptible(async (signal) => {
    let verification: Statefile["verification"];
    try {
      await store.verifyArtifact(entry);
      const result = await drill(signal);
      method = `${encrypted ? "sha256, age decryption, sha256" : "sha256"}, then ${result.method}`;
      verification = { status: "verified", at: store.now().toISOString(), method, details: result.details };
    } catch (error) {
      if (error instanceof InterruptedError || interruptionOf(signal)) throw error;
      verification = {
        status: "failed",
        at: store.now().toISOString(),
        method,
        details: redact(messageOf(error)),
      };
      await store.update(entry.ref, (s) => (s.verification = verification)).catch(() => undefined);
      throw error;
    }
    await store.update(entry.ref, (s) => (s.verification = verification));
    return verification;
  }, options);
}
