/**
 * The one prune flow (docs/adr/0014), for the CLI's `--prune` and the retention `capsule run` applies after each
 * backup: every target's policy is resolved before anything is deleted, then per target the plan is made from the
 * store and the integrity sweep, confirmed, and carried out through `deletePlanned`, which keeps whatever a fresh
 * plan no longer lets go. For PostgreSQL, each target's streamed WAL follows its backups: what no kept base backup
 * needs goes after them (storage/wal-retention.ts), planned again from a fresh listing once the backups are gone.
 */
import type { EngineName } from "../domain/backup.js";
import type { BackupStore } from "../storage/backup-store.js";
import { sweepIntegrity } from "../storage/integrity.js";
import { formatBytes } from "../util/format.js";
import { interruptible } from "../util/interruption.js";
import {
  DeletesInterrupted,
  deletePlanned,
  planRetention,
  type RetentionDecision,
  type RetentionPolicy,
} from "../storage/retention.js";
import {
  deleteWal,
  planStoredWal,
  WalDeletesInterrupted,
  type WalRetentionPlan,
} from "../storage/wal-retention.js";
import { profileOf } from "../engines/registry.js";

export interface PruneRequest {
  /** Without a target: every target that has backups of the engine in the cluster. */
  readonly scope: { readonly cluster: string; readonly engine: EngineName; readonly target?: string };
  /** The policy of a target and where it came from; throws for a target without one, before anything is deleted. */
  readonly policyFor: (target: string) => { policy: RetentionPolicy; source: string };
  /** Decide and report, delete nothing. */
  readonly dryRun?: boolean;
  /**
   * Asked before a target's deletions; rejects to cancel. It is asked inside the prune's interruptible window:
   * `signal` withdraws the question on SIGINT/SIGTERM.
   */
  readonly confirm?: (question: string, signal: AbortSignal) => Promise<void>;
  readonly notice?: (line: string) => void;
}

export interface TargetPrune {
  readonly target: string;
  readonly policy: RetentionPolicy;
  /** Where the policy came from (`--plans plans/`, `the cluster's CronJobs`, `flags`). */
  readonly source: string;
  readonly keep: RetentionDecision[];
  readonly delete: RetentionDecision[];
  /** Planned deletions a fresh plan kept: the store changed while the operator read the plan. */
  readonly spared: string[];
  /** The target's streamed WAL (PostgreSQL targets that have any). */
  readonly wal?: WalPrune;
}

export interface WalPrune {
  /** Segments (complete and partial) in the bucket before the prune. */
  readonly listed: number;
  /** What the plan lets go: segments and their stored bytes. */
  readonly segments: number;
  readonly bytes: number;
  /** Segments actually deleted (0 on a dry run). */
  readonly deleted: number;
  readonly deletedBytes: number;
  /** The first WAL file kept for the oldest kept base backup. */
  readonly keptFrom?: string;
  /** Why every segment is kept, when it is. */
  readonly keptAll?: string;
}

export interface PruneReport {
  readonly dryRun: boolean;
  readonly targets: TargetPrune[];
}

export async function prune(store: BackupStore, request: PruneRequest): Promise<PruneReport> {
  const { cluster, engine } = request.scope;
  // The integrity sweep's listing also names the targets; each target is listed afresh below.
  const { findings, entries: listed } = await sweepIntegrity(store, cluster, engine);
  const targets = request.scope.target
    ? [request.scope.target]
    : [...new Set(listed.flatMap((e) => (e.statefile ? [e.statefile.target] : [])))].sort();
  const policies = targets.map((target) => ({ target, ...request.policyFor(target) }));
  const dryRun = request.dryRun === true;
  const results: TargetPrune[] = [];
  const deleted: string[] = [];
  let walDeleted = 0;
  await interruptible(
    async (signal) => {
      for (const { target, policy, source } of policies) {
        if (signal.aborted) throw new DeletesInterrupted([], signal.reason);
        const scope = { cluster, engine, target };
        const entries = await store.list(scope);
        const plan = planRetention(entries, policy, store.now(), findings);
        const going = new Set(plan.delete.map((d) => d.backupId));
        const wal = profileOf(engine).streamsWal
          ? await planStoredWal(
              store,
              cluster,
              target,
              entries.filter((e) => !going.has(e.ref.backupId)),
            )
          : undefined;
        const walGoing = wal?.plan.delete.length ?? 0;
        let spared: string[] = [];
        let walDone = { deleted: 0, bytes: 0 };
        if (!dryRun && (plan.delete.length > 0 || walGoing > 0)) {
          await request.confirm?.(
            `Delete ${[
              ...(plan.delete.length > 0 ? [`${plan.delete.length} backup(s)`] : []),
              ...(wal && walGoing > 0 ? [walAmount(wal.plan)] : []),
            ].join(" and ")} of ${cluster}/${target}?`,
            signal,
          );
          if (plan.delete.length > 0) {
            try {
              const done = await deletePlanned(store, scope, policy, plan, signal);
              spared = done.spared;
              deleted.push(...done.deleted);
            } catch (error) {
              if (error instanceof DeletesInterrupted) deleted.push(...error.deleted);
              throw error;
            }
            for (const id of spared)
              request.notice?.(`kept ${id}: the store changed since the plan, it is no longer let go`);
          }
          if (wal && walGoing > 0) {
            // Planned again now the backups are gone: a backup spared, or begun, since the plan keeps its WAL.
            const fresh = await planStoredWal(store, cluster, target, await store.list(scope));
            try {
              await deleteWal(
                wal.archive,
                wal.plan,
                fresh.plan,
                (segment) => {
                  walDeleted++;
                  walDone = { deleted: walDone.deleted + 1, bytes: walDone.bytes + segment.sizeBytes };
                },
                signal,
              );
            } catch (error) {
              if (error instanceof WalDeletesInterrupted) throw new DeletesInterrupted([], error.cause);
              throw error;
            }
          }
        }
        results.push({
          target,
          policy,
          source,
          ...plan,
          spared,
          ...(wal && wal.plan.listed > 0 ? { wal: walReport(wal.plan, walDone) } : {}),
        });
      }
    },
    {
      describe: (signal) =>
        `interrupted by ${signal}: deleted ${deleted.length} backup(s)${deleted.length ? ` (${deleted.join(", ")})` : ""}, ` +
        `each whole${walDeleted > 0 ? `, and ${walDeleted} WAL segment(s), oldest first` : ""}; ` +
        "every other backup is kept as it was; --prune again finishes",
      ...(request.notice ? { notice: request.notice } : {}),
    },
  );
  return { dryRun, targets: results };
}

function walReport(plan: WalRetentionPlan, done: { deleted: number; bytes: number }): WalPrune {
  return {
    listed: plan.listed,
    segments: plan.delete.length,
    bytes: plan.deleteBytes,
    deleted: done.deleted,
    deletedBytes: done.bytes,
    ...(plan.keptFrom ? { keptFrom: plan.keptFrom } : {}),
    ...(plan.keptAll ? { keptAll: plan.keptAll } : {}),
  };
}

function walAmount(plan: WalRetentionPlan): string {
  return `${plan.delete.length} WAL segment(s) (${formatBytes(plan.deleteBytes)})`;
}
