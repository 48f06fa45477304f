/**
 * Proof that a backup restores (issue 8): the artifact's sha256 first, then the engine's restore drill into a
 * target that cannot harm production, compared with the fingerprint taken at backup time. The outcome — verified
 * or failed, when, how, what differed — is written into the statefile, so the bucket itself says which backups
 * have been proven. An interrupted drill proves nothing either way: it records nothing, so a backup is never marked
 * failed (and retention never passes it over) because an operator pressed Ctrl-C.
 */
import { messageOf } from "../domain/errors.js";
import { redact } from "../redact.js";
import type { BackupEntry, BackupStore } from "../storage/backup-store.js";
import type { Statefile } from "../domain/statefile.js";
import { interruptible, InterruptedError, interruptionOf } from "../util/interruption.js";

export interface DrillResult {
  readonly method: string;
  readonly details: string;
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
