/**
 * Proof that a backup restores (issue 8): the artifact's sha256 first, then the engine's restore drill into a
 * target that cannot harm production, compared with the fingerprint taken at backup time. The outcome — verified
 * or failed, when, how, what differed — is written into the statefile, so the bucket itself says which backups
 * have been proven.
 */
import { messageOf } from "../errors.js";
import { redact } from "../redact.js";
import type { BackupEntry, BackupStore } from "../storage/backup-store.js";
import type { Statefile } from "../storage/statefile.js";

export interface DrillResult {
  readonly method: string;
  readonly details: string;
}

export async function verifyBackup(
  store: BackupStore,
  entry: BackupEntry,
  drill: () => Promise<DrillResult>,
): Promise<Statefile["verification"]> {
  const encrypted = entry.statefile?.artifact?.encryption.type === "age";
  let method = encrypted
    ? "sha256 of the stored artifact, age decryption and sha256 of the plaintext"
    : "sha256 of the stored artifact";
  let verification: Statefile["verification"];
  try {
    await store.verifyArtifact(entry);
    const result = await drill();
    method = `${encrypted ? "sha256, age decryption, sha256" : "sha256"}, then ${result.method}`;
    verification = { status: "verified", at: store.now().toISOString(), method, details: result.details };
  } catch (error) {
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
}
