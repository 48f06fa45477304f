/**
 * The integrity sweep: what a listing cannot see. Finds succeeded backups whose artifact is missing or has another
 * size than recorded, unreadable statefiles, orphans — objects under a backup folder that has no statefile (a
 * run killed before its first write, or a delete that crashed after removing the statefile's twin) — and the
 * unfinished uploads a killed run left (billed, and shown by no listing), except those of a run that may be alive.
 */
import type { BackupObject, BackupStore } from "./backup-store.js";
import { STATEFILE_NAME } from "./layout.js";
import { type EngineName } from "../domain/backup.js";

export type FindingKind =
  "missing-artifact" | "size-mismatch" | "corrupt-statefile" | "orphan" | "incomplete-upload";

export interface Finding {
  readonly kind: FindingKind;
  readonly backupId: string;
  /** The object the finding is about. */
  readonly key: string;
  readonly detail: string;
}

export async function checkIntegrity(
  store: BackupStore,
  cluster: string,
  engine: EngineName,
): Promise<Finding[]> {
  const folders = new Map<string, Map<string, BackupObject>>();
  for (const object of await store.listBackupObjects(cluster, engine)) {
    const files = folders.get(object.backupId) ?? new Map<string, BackupObject>();
    files.set(object.name, object);
    folders.set(object.backupId, files);
  }
  const entries = new Map((await store.list({ cluster, engine })).map((e) => [e.ref.backupId, e]));
  const findings: Finding[] = [];
  for (const [backupId, files] of [...folders].sort(([a], [b]) => (a < b ? 1 : -1))) {
    const ref = { cluster, engine, backupId };
    const entry = entries.get(backupId);
    if (!files.has(STATEFILE_NAME) || !entry) {
      for (const { key } of files.values()) {
        // As listed: a stranger's folder need not be a name capsule would build a key from.
        findings.push({ kind: "orphan", backupId, key, detail: "no statefile" });
      }
      continue;
    }
    if (entry.state === "corrupt") {
      findings.push({
        kind: "corrupt-statefile",
        backupId,
        key: entry.key,
        detail: entry.problem ?? "unreadable",
      });
      continue;
    }
    const artifact = entry.statefile?.artifact;
    if (entry.state !== "succeeded" || !artifact) continue;
    const size = files.get(artifact.name)?.sizeBytes;
    const key = store.artifactKey(ref, artifact.name);
    if (size === undefined) {
      findings.push({ kind: "missing-artifact", backupId, key, detail: `${artifact.name} is gone` });
    } else if (size !== artifact.sizeBytes) {
      findings.push({
        kind: "size-mismatch",
        backupId,
        key,
        detail: `${size} bytes stored, ${artifact.sizeBytes} recorded`,
      });
    }
  }
  for (const { backupId, key } of await store.listIncompleteUploads(cluster, engine)) {
    // A running run with a fresh heartbeat is still uploading: its upload is not a leftover.
    if (entries.get(backupId)?.state === "running") continue;
    findings.push({
      kind: "incomplete-upload",
      backupId,
      key,
      detail: "unfinished upload of a run that ended",
    });
  }
  return findings;
}
