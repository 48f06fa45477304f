/**
 * Retention (docs/design.md §9): a pure planner over the backups of one (cluster, target), and an executor.
 *
 * Only a **restorable** backup fills a keep slot: state `succeeded`, verification not `failed`, and no damage the
 * integrity sweep finds (`--check`: artifact missing or of another size than recorded). Among restorable backups a
 * verified one ranks above an unverified one. The rules, each printed as the reason of its decision:
 *
 * - The newest restorable backup is always kept, and so is the newest verified one (the last proven restore point):
 *   a newer backup that was never drilled must not push the only proven one out. With keepLast 1 that can keep two.
 * - keepLast N: the N newest restorable backups.
 * - keepDaily / keepWeekly / keepMonthly N: for each of the newest N UTC days / ISO weeks / months that hold a
 *   restorable backup, one of them: the newest verified one of that period, else the newest.
 * - Every other restorable backup is deleted ("beyond retention").
 *
 * Backups that are not restorable never fill a slot. What happens to them, and why:
 * - running: kept (a run in progress; an abandoned one has its own state).
 * - unreadable statefile or damaged artifact: kept for an operator, like `--check` leaves them: the damage is
 *   evidence of a storage or tampering problem that deleting would erase; `--delete --id` removes one on purpose.
 * - failed or abandoned run: kept `failedGraceHours` for diagnosis, then deleted (it has no usable artifact).
 * - failed verification: kept `failedGraceHours` from the failure for diagnosis, and beyond that until a newer
 *   restorable backup exists. The artifact is whole as far as the store can tell and the failure may be the drill's,
 *   so the newest backup a target has is never thrown away just because it could not be proven.
 * - deleting: an interrupted delete is finished.
 *
 * The invariant — if the target had a restorable backup, the newest one stays, and nothing running is deleted — is
 * checked on every plan before it is returned, so a bug in the rules above fails loudly instead of deleting.
 *
 * A PostgreSQL target's physical base backups and logical dumps are planned apart, each kind under the whole policy
 * (docs/adr/0014, amended for point-in-time recovery): they restore differently and are taken on different
 * schedules, so hourly dumps must never push the daily base backups (and the WAL they anchor) out of keepLast, nor
 * base backups the dumps. Each kind keeps its own newest restorable and newest verified backup.
 */
import { CapsuleError, ErrorCode } from "../domain/errors.js";
import type { BackupEntry, BackupStore } from "./backup-store.js";
import { checkIntegrity, type Finding } from "./integrity.js";
import type { EngineName } from "../domain/backup.js";
import type { BackupState, VerificationStatus } from "../domain/statefile.js";

export interface RetentionPolicy {
  /** Newest restorable backups kept regardless of age. At least 1. */
  readonly keepLast: number;
  /** One restorable backup of each of the last N UTC days that have one (GFS). @default 0 */
  readonly keepDaily?: number;
  /** … of each of the last N ISO weeks. @default 0 */
  readonly keepWeekly?: number;
  /** … of each of the last N months. @default 0 */
  readonly keepMonthly?: number;
  /** Failed and abandoned runs, and failed verifications, are kept this long for diagnosis. @default 72 */
  readonly failedGraceHours?: number;
}

export const DEFAULT_FAILED_GRACE_HOURS = 72;

export type BackupKind = "logical" | "physical";

export interface RetentionDecision {
  readonly backupId: string;
  /** Which kind's slots the backup was counted in (PostgreSQL; every other engine's backups are logical). */
  readonly kind: BackupKind;
  readonly state: BackupState;
  /** Whether the backup could be restored: what the keep slots count. */
  readonly restorable: boolean;
  readonly verification?: VerificationStatus;
  readonly reason: string;
}

export interface RetentionPlan {
  readonly keep: RetentionDecision[];
  readonly delete: RetentionDecision[];
}

/** Integrity findings that make a succeeded backup unrestorable: its artifact is not what the statefile records. */
const DAMAGE: ReadonlySet<Finding["kind"]> = new Set(["missing-artifact", "size-mismatch"]);

/**
 * Plans retention for the backups of one (cluster, engine, target). `findings` are the integrity sweep's for that
 * cluster and engine (`checkIntegrity`); those about other backups are ignored.
 */
export function planRetention(
  entries: readonly BackupEntry[],
  policy: RetentionPolicy,
  now: Date,
  findings: readonly Finding[],
): RetentionPlan {
  if (!Number.isInteger(policy.keepLast) || policy.keepLast < 1) {
    throw new CapsuleError(
      ErrorCode.Config,
      `retention keepLast must be an integer >= 1 (got ${policy.keepLast})`,
    );
  }
  assertOneScope(entries);
  const plan: RetentionPlan = { keep: [], delete: [] };
  for (const kind of ["logical", "physical"] as const) {
    const ofKind = entries.filter((e) => kindOf(e) === kind);
    if (ofKind.length === 0) continue;
    const part = planKind(ofKind, kind, policy, now, findings);
    plan.keep.push(...part.keep);
    plan.delete.push(...part.delete);
  }
  return plan;
}

/**
 * The kind a backup's slots are counted in. Recorded from `begin`, so a running base backup is known as one; an
 * unreadable statefile has no kind and is kept whatever its kind, so counting it as logical changes nothing.
 */
export function kindOf(e: BackupEntry): BackupKind {
  return e.statefile?.kind === "physical" ? "physical" : "logical";
}

function planKind(
  entries: readonly BackupEntry[],
  kind: BackupKind,
  policy: RetentionPolicy,
  now: Date,
  findings: readonly Finding[],
): RetentionPlan {
  const damage = new Map<string, string>();
  for (const f of findings) if (DAMAGE.has(f.kind)) damage.set(f.backupId, `${f.kind}: ${f.detail}`);

  const keep = new Map<string, RetentionDecision>();
  const remove = new Map<string, RetentionDecision>();
  const decision = (e: BackupEntry, restorable: boolean, reason: string): RetentionDecision => ({
    backupId: e.ref.backupId,
    kind,
    state: e.state,
    restorable,
    ...(e.statefile && { verification: e.statefile.verification.status }),
    reason,
  });
  const keepBecause = (e: BackupEntry, reason: string, restorable = false) => {
    const prior = keep.get(e.ref.backupId);
    keep.set(e.ref.backupId, decision(e, restorable, prior ? `${prior.reason}, ${reason}` : reason));
  };
  const deleteBecause = (e: BackupEntry, reason: string, restorable = false) =>
    remove.set(e.ref.backupId, decision(e, restorable, reason));

  const grace = policy.failedGraceHours ?? DEFAULT_FAILED_GRACE_HOURS;
  const withinGrace = (at: string | undefined) =>
    (at ? now.getTime() - Date.parse(at) : Infinity) < grace * 3_600_000;
  const restorable: BackupEntry[] = [];
  const failedVerification: BackupEntry[] = [];
  for (const e of entries) {
    switch (e.state) {
      case "succeeded": {
        const damaged = damage.get(e.ref.backupId);
        if (damaged !== undefined) keepBecause(e, `damaged (${damaged}): left for an operator`);
        else if (e.statefile?.verification.status === "failed") failedVerification.push(e);
        else restorable.push(e);
        break;
      }
      case "running":
        keepBecause(e, "still running");
        break;
      case "corrupt":
        keepBecause(e, "unreadable statefile: left for an operator");
        break;
      case "deleting":
        deleteBecause(e, "finishing an interrupted delete");
        break;
      case "failed":
      case "abandoned": {
        const last = e.statefile?.finishedAt ?? e.statefile?.heartbeatAt ?? e.statefile?.startedAt;
        if (withinGrace(last)) keepBecause(e, `${e.state} within the ${grace}h grace period`);
        else deleteBecause(e, `${e.state} run past grace`);
        break;
      }
    }
  }

  restorable.sort(newestFirst);
  const newest = restorable[0];
  // Named by kind only where two kinds share a target, so a logical-only target reads as it always did.
  const of = kind === "physical" ? " physical" : "";
  if (newest) keepBecause(newest, `newest restorable${of}`, true);
  const newestVerified = restorable.find(isVerified);
  if (newestVerified) keepBecause(newestVerified, `newest verified${of}`, true);
  restorable.slice(0, policy.keepLast).forEach((e) => keepBecause(e, `keepLast ${policy.keepLast}`, true));
  const gfs: Array<[number | undefined, string, (d: Date) => string]> = [
    [policy.keepDaily, "daily", (d) => d.toISOString().slice(0, 10)],
    [policy.keepWeekly, "weekly", isoWeek],
    [policy.keepMonthly, "monthly", (d) => d.toISOString().slice(0, 7)],
  ];
  for (const [count, label, periodOf] of gfs) {
    if (!count) continue;
    for (const [period, pick] of pickPerPeriod(restorable, periodOf, count))
      keepBecause(pick, `${label} ${period}${isVerified(pick) ? " (verified)" : ""}`, true);
  }
  for (const e of restorable) if (!keep.has(e.ref.backupId)) deleteBecause(e, "beyond retention", true);

  for (const e of failedVerification) {
    const at = e.statefile?.verification.at ?? e.statefile?.finishedAt;
    if (withinGrace(at)) keepBecause(e, `verification failed, within the ${grace}h grace period`);
    else if (!newest || timeOf(newest) < timeOf(e))
      keepBecause(e, "verification failed, kept: no newer restorable backup");
    else deleteBecause(e, "verification failed past grace, a newer restorable backup is kept");
  }

  const plan = { keep: [...keep.values()], delete: [...remove.values()] };
  assertSafe(entries, plan, newest);
  return plan;
}

function isVerified(e: BackupEntry): boolean {
  return e.statefile?.verification.status === "verified";
}

/**
 * The pick of each of the newest `count` periods: the newest verified backup in the period if there is one (a
 * proven restore beats a fresher unproven one), else the newest.
 */
function pickPerPeriod(
  newestFirst: readonly BackupEntry[],
  periodOf: (d: Date) => string,
  count: number,
): Array<[string, BackupEntry]> {
  const periods = new Map<string, BackupEntry[]>();
  for (const e of newestFirst) {
    const period = periodOf(new Date(timeOf(e)));
    if (!periods.has(period) && periods.size >= count) break;
    const members = periods.get(period) ?? [];
    members.push(e);
    periods.set(period, members);
  }
  return [...periods].map(([period, members]) => [period, members.find(isVerified) ?? members[0]!]);
}

function timeOf(e: BackupEntry): string {
  return e.statefile?.finishedAt ?? e.statefile?.startedAt ?? "";
}

/** Newest finished first; ties by id, so a plan never depends on the listing's order. */
function newestFirst(a: BackupEntry, b: BackupEntry): number {
  const at = timeOf(a);
  const bt = timeOf(b);
  if (at !== bt) return at < bt ? 1 : -1;
  return a.ref.backupId < b.ref.backupId ? 1 : a.ref.backupId > b.ref.backupId ? -1 : 0;
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

/**
 * The guarantee, checked on the finished plan rather than trusted to the rules: every backup decided exactly once,
 * the newest restorable one kept, nothing running deleted. A violation is a bug, never a deletion.
 */
function assertSafe(
  entries: readonly BackupEntry[],
  plan: RetentionPlan,
  newest: BackupEntry | undefined,
): void {
  const deleted = new Set(plan.delete.map((d) => d.backupId));
  const problems = [
    ...(newest && deleted.has(newest.ref.backupId) ? [`the newest restorable ${newest.ref.backupId}`] : []),
    ...entries
      .filter((e) => e.state === "running" && deleted.has(e.ref.backupId))
      .map((e) => `running ${e.ref.backupId}`),
    ...entries
      .filter((e) => deleted.has(e.ref.backupId) === plan.keep.some((k) => k.backupId === e.ref.backupId))
      .map((e) => `${e.ref.backupId} decided ${deleted.has(e.ref.backupId) ? "twice" : "never"}`),
  ];
  if (problems.length > 0)
    throw new Error(`retention plan would break its guarantee: ${problems.join(", ")}`);
}

export interface RetentionScope {
  readonly cluster: string;
  readonly engine: EngineName;
  readonly target: string;
}

/** The plan for one target as the store holds it now: its backups, and the integrity sweep's damage. */
export async function planStoredRetention(
  store: BackupStore,
  scope: RetentionScope,
  policy: RetentionPolicy,
): Promise<RetentionPlan> {
  const findings = await checkIntegrity(store, scope.cluster, scope.engine);
  return planRetention(await store.list(scope), policy, store.now(), findings);
}

/**
 * Deletes what `shown` lets go — but only what a fresh plan still lets go. Between a plan and its deletion time
 * passes (an operator reading a confirmation, a drill recording a failure, another prune): a backup that became the
 * newest restorable in between is kept. Returns the ids deleted and those spared by the fresh plan.
 */
export async function deletePlanned(
  store: BackupStore,
  scope: RetentionScope,
  policy: RetentionPolicy,
  shown: RetentionPlan,
  signal?: AbortSignal,
): Promise<{ deleted: string[]; spared: string[] }> {
  const fresh = await planStoredRetention(store, scope, policy);
  const stillGoing = new Set(fresh.delete.map((d) => d.backupId));
  const deleted: string[] = [];
  const spared: string[] = [];
  for (const decision of shown.delete) {
    if (!stillGoing.has(decision.backupId)) {
      spared.push(decision.backupId);
      continue;
    }
    // Interrupted, a prune stops between two deletes: what it deleted is gone, the rest is kept whole.
    if (signal?.aborted) throw new DeletesInterrupted(deleted, signal.reason);
    await store.delete({ cluster: scope.cluster, engine: scope.engine, backupId: decision.backupId }, signal);
    deleted.push(decision.backupId);
  }
  return { deleted, spared };
}

/** A prune stopped between two deletes; `deleted` are those it finished. */
export class DeletesInterrupted extends Error {
  constructor(
    readonly deleted: readonly string[],
    cause: unknown,
  ) {
    super("interrupted between deletes", { cause });
  }
}
