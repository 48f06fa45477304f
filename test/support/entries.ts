/** Small builders for statefiles and backup entries in table-driven tests. */
import type { BackupEntry } from "../../src/storage/backup-store.js";
import { layout } from "../../src/storage/layout.js";
import { type EngineName, newBackupId } from "../../src/domain/backup.js";
import { type BackupState, STATEFILE_VERSION, type Statefile } from "../../src/domain/statefile.js";

let counter = 0;

export function statefile(overrides: Partial<Statefile> & { at?: string } = {}): Statefile {
  const { at, ...rest } = overrides;
  const engine: EngineName = rest.engine ?? "postgresql";
  const startedAt = at ?? rest.startedAt ?? "2026-11-01T00:00:00.000Z";
  const backupId =
    rest.backupId ?? newBackupId(engine, new Date(startedAt), (counter++).toString(16).padStart(6, "0"));
  const status = rest.status ?? "succeeded";
  return {
    statefileVersion: STATEFILE_VERSION,
    backupId,
    cluster: "ns.app",
    target: "db",
    engine,
    trigger: { type: "schedule" },
    status,
    phase: status === "succeeded" ? "committed" : "dumping",
    startedAt,
    heartbeatAt: startedAt,
    ...(status === "running" ? {} : { finishedAt: startedAt }),
    source: { host: "postgres", port: 5432, database: "app" },
    ...(status === "succeeded"
      ? {
          artifact: {
            name: "dump.pgcustom.zst",
            format: "pg_dump-custom",
            compression: "zstd" as const,
            encryption: { type: "none" as const },
            sizeBytes: 10,
            sha256: "0".repeat(64),
          },
        }
      : {}),
    tool: { capsule: "test" },
    verification: { status: "unverified" },
    restores: [],
    ...rest,
  };
}

/** An entry as the store would report it; `state` defaults to the written status. */
export function entry(
  overrides: Partial<Statefile> & { at?: string; state?: BackupState } = {},
): BackupEntry {
  const { state, ...rest } = overrides;
  const s = statefile(rest);
  const ref = { cluster: s.cluster, engine: s.engine, backupId: s.backupId };
  return { ref, key: layout.statefileKey("capsule", ref), state: state ?? s.status, statefile: s };
}

/** `n` entries, one per day going back from `from`, newest first. */
export function daily(
  n: number,
  from: string,
  overrides: Partial<Statefile> & { state?: BackupState } = {},
): BackupEntry[] {
  const start = Date.parse(from);
  return Array.from({ length: n }, (_, i) =>
    entry({ ...overrides, at: new Date(start - i * 86_400_000).toISOString() }),
  );
}
