/**
 * The integrity sweep: what a listing cannot see. Finds succeeded backups whose artifact is missing or has another
 * size than recorded, unreadable statefiles, and orphans — objects under a backup folder that has no statefile (a
 * run killed before its first write, or a delete that crashed after removing the statefile's twin).
 */
import type { BackupStore } from "./backup-store.js";
import { STATEFILE_NAME, layout } from "./layout.js";
import { type EngineName } from "../domain/backup.js";

export type FindingKind = "missing-artifact" | "size-mismatch" | "corrupt-statefile" | "orphan";

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
  const prefix = layout.enginePrefix(store.prefix, cluster, engine);
  const folders = new Map<string, Map<string, number>>();
  for await (const object of store.objects.list(prefix)) {
    const [backupId, ...rest] = object.key.slice(prefix.length).split("/");
    if (!backupId || rest.length === 0) continue;
    const files = folders.get(backupId) ?? new Map<string, number>();
    files.set(rest.join("/"), object.size);
    folders.set(backupId, files);
  }
  const entries = new Map((await store.list({ cluster, engine })).map((e) => [e.ref.backupId, e]));
  const findings: Finding[] = [];
  for (const [backupId, files] of [...folders].sort(([a], [b]) => (a < b ? 1 : -1))) {
    const ref = { cluster, engine, backupId };
    const entry = entries.get(backupId);
    if (!files.has(STATEFILE_NAME) || !entry) {
      for (const name of files.keys()) {
        findings.push({
          kind: "orphan",
          backupId,
          // As listed: a stranger's folder need not be a name capsule would build a key from.
          key: `${prefix}${backupId}/${name}`,
          detail: "no statefile",
        });
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
    const size = files.get(artifact.name);
    const key = layout.artifactKey(store.prefix, ref, artifact.name);
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
  return findings;
}
