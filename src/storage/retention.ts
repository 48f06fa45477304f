/**
 * Retention (DESIGN §9): a pure planner over the backups of one (cluster, target), and an executor. The planner
 * never deletes the newest succeeded backup, never deletes a running one, never counts a failed, abandoned or
 * corrupt run as good, so a schedule that only fails keeps every good backup it had.
 */
import { CapsuleError, ErrorCode } from "../errors.js";
import type { BackupEntry, BackupStore } from "./backup-store.js";
import type { Engine } from "./layout.js";
import type { BackupState } from "./statefile.js";

export interface RetentionPolicy {
  /** Newest succeeded backups kept regardless of age. At least 1. */
  readonly keepLast: number;
  /** Newest succeeded backup of each of the last N UTC days (GFS). @default 0 */
  readonly keepDaily?: number;
  /** … of each of the last N ISO weeks. @default 0 */
  readonly keepWeekly?: number;
  /** … of each of the last N months. @default 0 */
  readonly keepMonthly?: number;
  /** Failed and abandoned runs are kept this long for diagnosis, then deleted. @default 72 */
  readonly failedGraceHours?: number;
}

export const DEFAULT_FAILED_GRACE_HOURS = 72;

export interface RetentionDecision {
  readonly backupId: string;
  readonly state: BackupState;
  readonly reason: string;
}

export interface RetentionPlan {
  readonly keep: RetentionDecision[];
  readonly delete: RetentionDecision[];
}

export function planRetention(
  entries: readonly BackupEntry[],
  policy: RetentionPolicy,
  now: Date,
): RetentionPlan {
  if (!Number.isInteger(policy.keepLast) || policy.keepLast < 1) {
    throw new CapsuleError(
      ErrorCode.Config,
      `retention keepLast must be an integer >= 1 (got ${policy.keepLast})`,
    );
  }
  assertOneScope(entries);
  const keep = new Map<string, RetentionDecision>();
  const remove = new Map<string, RetentionDecision>();
  const keepBecause = (e: BackupEntry, reason: string) => {
    const prior = keep.get(e.ref.backupId);
    keep.set(e.ref.backupId, {
      backupId: e.ref.backupId,
      state: e.state,
      reason: prior ? `${prior.reason}, ${reason}` : reason,
    });
  };

  const graceMs = (policy.failedGraceHours ?? DEFAULT_FAILED_GRACE_HOURS) * 3_600_000;
  const succeeded: BackupEntry[] = [];
  for (const e of entries) {
    switch (e.state) {
      case "succeeded":
        succeeded.push(e);
        break;
      case "running":
        keepBecause(e, "still running");
        break;
      case "corrupt":
        keepBecause(e, "unreadable statefile: left for an operator");
        break;
      case "deleting":
        remove.set(e.ref.backupId, {
          backupId: e.ref.backupId,
          state: e.state,
          reason: "finishing an interrupted delete",
        });
        break;
      case "failed":
      case "abandoned": {
        const last = e.statefile?.finishedAt ?? e.statefile?.heartbeatAt ?? e.statefile?.startedAt;
        const age = last ? now.getTime() - Date.parse(last) : Infinity;
        if (age < graceMs) keepBecause(e, `${e.state} within the ${graceMs / 3_600_000}h grace period`);
        else
          remove.set(e.ref.backupId, {
            backupId: e.ref.backupId,
            state: e.state,
            reason: `${e.state} run past grace`,
          });
        break;
      }
    }
  }

  succeeded.sort((a, b) => (timeOf(a) < timeOf(b) ? 1 : timeOf(a) > timeOf(b) ? -1 : 0));
  succeeded
    .slice(0, policy.keepLast)
    .forEach((e, i) => keepBecause(e, i === 0 ? "newest succeeded" : `keepLast ${policy.keepLast}`));
  const gfs: Array<[number | undefined, string, (d: Date) => string]> = [
    [policy.keepDaily, "daily", (d) => d.toISOString().slice(0, 10)],
    [policy.keepWeekly, "weekly", isoWeek],
    [policy.keepMonthly, "monthly", (d) => d.toISOString().slice(0, 7)],
  ];
  for (const [count, label, bucketOf] of gfs) {
    if (!count) continue;
    for (const [bucket, pick] of pickPerBucket(succeeded, bucketOf, count))
      keepBecause(pick, `${label} ${bucket}`);
  }
  for (const e of succeeded) {
    if (!keep.has(e.ref.backupId)) {
      remove.set(e.ref.backupId, { backupId: e.ref.backupId, state: e.state, reason: "beyond retention" });
    }
  }
  return { keep: [...keep.values()], delete: [...remove.values()] };
}

/**
 * The representative of each of the newest `count` buckets: the newest verified backup in the bucket if there is
 * one (a proven restore beats a fresher unproven one), else the newest.
 */
function pickPerBucket(
  newestFirst: readonly BackupEntry[],
  bucketOf: (d: Date) => string,
  count: number,
): Array<[string, BackupEntry]> {
  const buckets = new Map<string, BackupEntry[]>();
  for (const e of newestFirst) {
    const bucket = bucketOf(new Date(timeOf(e)));
    if (!buckets.has(bucket) && buckets.size >= count) break;
    const members = buckets.get(bucket) ?? [];
    members.push(e);
    buckets.set(bucket, members);
  }
  return [...buckets].map(([bucket, members]) => [
    bucket,
    members.find((m) => m.statefile?.verification.status === "verified") ?? members[0]!,
  ]);
}

function timeOf(e: BackupEntry): string {
  return e.statefile?.finishedAt ?? e.statefile?.startedAt ?? "";
}

/** ISO-8601 week, e.g. "2026-W48": weeks start on Monday and belong to the year of their Thursday. */
function isoWeek(d: Date): string {
  const day = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const weekday = day.getUTCDay() || 7;
  day.setUTCDate(day.getUTCDate() + 4 - weekday);
  const yearStart = Date.UTC(day.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((day.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${day.getUTCFullYear()}-W${String(week).padStart(2, "0")}`;
}

/** Retention is scoped to one cluster and target; mixing scopes is a bug that could delete another's backups. */
function assertOneScope(entries: readonly BackupEntry[]): void {
  const scopes = new Set(
    entries
      .map((e) => `${e.ref.cluster}/${e.ref.engine}/${e.statefile?.target ?? "?"}`)
      .filter((s) => !s.endsWith("/?")),
  );
  const clusters = new Set(entries.map((e) => `${e.ref.cluster}/${e.ref.engine}`));
  if (scopes.size > 1 || clusters.size > 1) {
    throw new Error(
      `retention given backups of more than one cluster/target: ${[...scopes, ...clusters].join(", ")}`,
    );
  }
}

export interface RetentionScope {
  readonly cluster: string;
  readonly engine: Engine;
  readonly target: string;
}

/** Plans retention for one target from the store and, unless `dryRun`, deletes what the plan lets go. */
export async function applyRetention(
  store: BackupStore,
  scope: RetentionScope,
  policy: RetentionPolicy,
  options: { dryRun?: boolean } = {},
): Promise<RetentionPlan & { deleted: string[] }> {
  const entries = await store.list(scope);
  const plan = planRetention(entries, policy, store.now());
  const deleted: string[] = [];
  if (!options.dryRun) {
    for (const decision of plan.delete) {
      await store.delete({ cluster: scope.cluster, engine: scope.engine, backupId: decision.backupId });
      deleted.push(decision.backupId);
    }
  }
  return { ...plan, deleted };
}
