/**
 * What the status API and the metrics say about backups, as pure functions of the store's entries. Statefiles hold
 * no secrets by design; messages still pass through `redact()` on the way out, as everything leaving capsule does.
 */
import type { BackupEntry } from "../storage/backup-store.js";
import type { BackupState } from "../domain/statefile.js";
import type { TargetBackupStats } from "./metrics.js";

export const BACKUP_STATES: readonly BackupState[] = [
  "running",
  "succeeded",
  "failed",
  "deleting",
  "abandoned",
  "corrupt",
];

/** One line of a backup list. */
export interface BackupSummary {
  readonly backupId: string;
  readonly cluster: string;
  readonly engine: string;
  readonly target: string | null;
  readonly state: BackupState;
  readonly trigger: string | null;
  readonly requestId?: string;
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
  readonly heartbeatAt: string | null;
  readonly phase: string | null;
  readonly sizeBytes: number | null;
  readonly sha256: string | null;
  readonly compression: string | null;
  readonly verification: string | null;
  readonly error: string | null;
  /** Why a corrupt entry is corrupt. */
  readonly problem?: string;
  readonly key: string;
}

export function backupSummary(entry: BackupEntry, redact: (text: string) => string): BackupSummary {
  const s = entry.statefile;
  return {
    backupId: entry.ref.backupId,
    cluster: entry.ref.cluster,
    engine: entry.ref.engine,
    target: s?.target ?? null,
    state: entry.state,
    trigger: s?.trigger.type ?? null,
    ...(s?.trigger.requestId !== undefined && { requestId: s.trigger.requestId }),
    startedAt: s?.startedAt ?? null,
    finishedAt: s?.finishedAt ?? null,
    heartbeatAt: s?.heartbeatAt ?? null,
    phase: s?.phase ?? null,
    sizeBytes: s?.artifact?.sizeBytes ?? null,
    sha256: s?.artifact?.sha256 ?? null,
    compression: s?.artifact?.compression ?? null,
    verification: s?.verification.status ?? null,
    error: s?.error ? redact(`${s.error.phase}: ${s.error.message}`) : null,
    ...(entry.problem !== undefined && { problem: redact(entry.problem) }),
    key: entry.key,
  };
}

/** The full record of one backup: the summary plus the whole statefile. */
export function backupDetail(entry: BackupEntry, redact: (text: string) => string): Record<string, unknown> {
  return {
    ...backupSummary(entry, redact),
    statefile: entry.statefile ? (JSON.parse(redact(JSON.stringify(entry.statefile))) as unknown) : null,
  };
}

/** Per-target figures for the metrics, from one cluster's entries (newest first, as the store lists them). */
export function targetStats(entries: readonly BackupEntry[]): {
  stats: TargetBackupStats[];
  corrupt: number;
} {
  const byTarget = new Map<string, TargetBackupStats>();
  let corrupt = 0;
  for (const entry of entries) {
    const s = entry.statefile;
    if (!s) {
      corrupt++;
      continue;
    }
    const key = `${s.target}\u0000${s.engine}`;
    const current: TargetBackupStats = byTarget.get(key) ?? {
      cluster: s.cluster,
      target: s.target,
      engine: s.engine,
      failedRuns: 0,
      runningRuns: 0,
      consecutiveFailures: 0,
    };
    let next: TargetBackupStats = current;
    const drilledAt =
      s.verification.at && s.verification.status !== "unverified"
        ? Date.parse(s.verification.at) / 1000
        : undefined;
    if (
      entry.state === "succeeded" &&
      drilledAt !== undefined &&
      drilledAt > (next.lastVerificationTime ?? -1)
    ) {
      next = {
        ...next,
        lastVerificationTime: drilledAt,
        lastVerificationSuccess: s.verification.status === "verified" ? 1 : 0,
      };
    }
    if (entry.state === "succeeded" && current.lastSuccessTime === undefined && s.finishedAt) {
      const finished = Date.parse(s.finishedAt) / 1000;
      next = {
        ...next,
        lastSuccessTime: finished,
        ...(s.artifact && { lastSuccessSizeBytes: s.artifact.sizeBytes }),
        lastSuccessDurationSeconds: Math.max(0, finished - Date.parse(s.startedAt) / 1000),
        newestVerified: s.verification.status === "verified" ? 1 : 0,
      };
    } else if (entry.state === "failed" || entry.state === "abandoned") {
      next = {
        ...next,
        failedRuns: next.failedRuns + 1,
        // Entries come newest first: until a success is seen, every failure is one more in the current streak.
        consecutiveFailures: next.consecutiveFailures + (current.lastSuccessTime === undefined ? 1 : 0),
        lastFailureTime: Math.max(next.lastFailureTime ?? 0, Date.parse(s.startedAt) / 1000),
      };
    } else if (entry.state === "running") {
      next = { ...next, runningRuns: next.runningRuns + 1 };
    }
    byTarget.set(key, next);
  }
  const starts = scheduledStarts(entries);
  const stats = [...byTarget.entries()].map(([key, s]) => {
    const interval = expectedInterval(starts.get(key) ?? []);
    return interval === undefined ? s : { ...s, expectedIntervalSeconds: interval };
  });
  return { stats, corrupt };
}

/** How many of a target's newest scheduled runs `expectedInterval` looks at. */
const INTERVAL_RUNS = 11;

/** Start times (unix seconds, newest first) of each target's newest scheduled runs, whatever their outcome. */
function scheduledStarts(entries: readonly BackupEntry[]): Map<string, number[]> {
  const starts = new Map<string, number[]>();
  for (const entry of entries) {
    const s = entry.statefile;
    if (s?.trigger.type !== "schedule") continue;
    const key = `${s.target}\u0000${s.engine}`;
    const list = starts.get(key) ?? [];
    if (list.length < INTERVAL_RUNS) list.push(Date.parse(s.startedAt) / 1000);
    starts.set(key, list);
  }
  return starts;
}

/**
 * The period a target is backed up at, as its CronJob realised it: the median gap between its newest scheduled runs.
 * The statefiles carry no schedule and `capsule serve` has no plan, so the runs themselves are the one source every
 * replica shares (ADR 0009). The median ignores the odd retry or missed run; only recent runs count, because
 * retention thins older ones out to daily/weekly keepers. Undefined with fewer than two runs.
 */
export function expectedInterval(startsNewestFirst: readonly number[]): number | undefined {
  const gaps: number[] = [];
  for (let i = 1; i < startsNewestFirst.length; i++) {
    const gap = (startsNewestFirst[i - 1] ?? 0) - (startsNewestFirst[i] ?? 0);
    if (gap > 0) gaps.push(gap);
  }
  if (gaps.length === 0) return undefined;
  gaps.sort((a, b) => a - b);
  const mid = Math.floor(gaps.length / 2);
  const median = gaps.length % 2 === 1 ? gaps[mid] : ((gaps[mid - 1] ?? 0) + (gaps[mid] ?? 0)) / 2;
  return Math.round((median ?? 0) * 1000) / 1000;
}
