/**
 * statefile.json v1, the shape and its rules: the self-describing record of one backup run, kept beside its
 * artifact. It is the commit marker (docs/style.md §9): data first, checksum recorded, the statefile's final status
 * last. It never holds a credential. Reading and writing it (the schema check) is storage/statefile.ts.
 */
import type { EngineName } from "./backup.js";
import type { PhysicalBackupInfo } from "./wal.js";

export const STATEFILE_VERSION = 1;

/** What is written. `deleting` marks a delete in progress so a crash half-way never leaves a "good" husk. */
export type WrittenStatus = "running" | "succeeded" | "failed" | "deleting";
/** What is reported: the written status, or a state derived when reading. */
export type BackupState = WrittenStatus | "abandoned" | "corrupt";

export type TriggerType = "schedule" | "manual" | "request";
export type VerificationStatus = "unverified" | "verified" | "failed";

export interface Statefile {
  statefileVersion: 1;
  backupId: string;
  cluster: string;
  target: string;
  engine: EngineName;
  /**
   * PostgreSQL only: `physical` is a `pg_basebackup` of the whole cluster, the start of point-in-time recovery
   * (docs/adr/0021); absent or `logical` is a dump of one database, as every statefile before it.
   */
  kind?: "logical" | "physical";
  /** Where a physical backup sits in the WAL; recorded at commit, so present once a `physical` run succeeded. */
  physical?: PhysicalBackupInfo;
  trigger: { type: TriggerType; requestId?: string; requestedBy?: string };
  status: WrittenStatus;
  /** What the run is doing or last did, e.g. "dumping", "uploading", "committed". */
  phase: string;
  startedAt: string;
  heartbeatAt: string;
  finishedAt?: string;
  /** Where the data came from. Never credentials. */
  source: {
    host?: string;
    port?: number;
    database?: string;
    indices?: string[];
    serverVersion?: string;
    sizeBytes?: number;
  };
  artifact?: Artifact;
  /** Versions of the tools that produced the artifact, e.g. { capsule: "0.1.0", pg_dump: "15.18" }. */
  tool: Record<string, string>;
  /** What verification compares, e.g. per-table row counts. Engine-specific. */
  fingerprint?: Record<string, unknown>;
  verification: {
    status: VerificationStatus;
    at?: string;
    method?: string;
    details?: string;
  };
  restores: RestoreRecord[];
  error?: { phase: string; message: string };
}

export interface Artifact {
  /** The artifact's object name, relative to the backup's folder, so a bucket copied under another prefix restores. */
  name: string;
  /** e.g. "pg_dump-custom", "rdb", "es-ndjson". */
  format: string;
  formatVersion?: string;
  compression: "none" | "zstd" | "gzip";
  encryption: Encryption;
  /** Stored bytes (the ciphertext when encrypted). */
  sizeBytes: number;
  /** Hex sha256 of the stored bytes. */
  sha256: string;
}

/**
 * How the stored bytes were encrypted on the client (docs/adr/0011). For age: the recipients are public keys, so
 * an operator can tell which identity opens the backup; the plaintext's digest proves the decryption.
 */
export type Encryption =
  { type: "none" } | { type: "age"; recipients: string[]; plaintextSha256: string; plaintextBytes: number };

/** The size of what the engine wrote (the plaintext), whether or not it was encrypted. */
export function plaintextSize(artifact: Artifact): number {
  return artifact.encryption.type === "age" ? artifact.encryption.plaintextBytes : artifact.sizeBytes;
}

export interface RestoreRecord {
  at: string;
  to: string;
  /** `interrupted`: SIGINT/SIGTERM stopped it; the message says what state the target was left in. */
  result: "succeeded" | "failed" | "interrupted";
  message?: string;
  /** The bucket request (or `--in-cluster` run) that asked for it; how the S3 watcher learns a restore ended. */
  requestId?: string;
  requestedBy?: string;
}

/** A running statefile whose heartbeat is older than this is reported as abandoned. */
export const DEFAULT_ABANDONED_AFTER_MS = 10 * 60 * 1000;

/** The reported state: `abandoned` is derived from a stale heartbeat, never written. */
export function deriveState(
  statefile: Statefile,
  now: Date = new Date(),
  abandonedAfterMs: number = DEFAULT_ABANDONED_AFTER_MS,
): BackupState {
  if (statefile.status !== "running") return statefile.status;
  const beat = Date.parse(statefile.heartbeatAt);
  return now.getTime() - beat > abandonedAfterMs ? "abandoned" : "running";
}
