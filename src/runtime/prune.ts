/**
 * The one prune flow (docs/adr/0014), for the CLI's `--prune` and the retention `capsule run` applies after each
 * backup: every target's policy is resolved before anything is deleted, then per target the plan is made from the
 * store and the integrity sweep, confirmed, and carried out through `deletePlanned`, which keeps whatever a fresh
 * plan no longer lets go.
 */
import type { EngineName } from "../domain/backup.js";
import type { BackupStore } from "../storage/backup-store.js";
import { checkIntegrity } from "../storage/integrity.js";
import { interruptible } from "../util/interruption.js";
import {
  DeletesInterrupted,
  deletePlanned,
  planRetention,
  type RetentionDecision,
  type RetentionPolicy,
} from "../storage/retention.js";

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
}

export interface PruneReport {
  readonly dryRun: boolean;
  readonly targets: TargetPrune[];
}

export async function prune(store: BackupStore, request: PruneRequest): Promise<PruneReport> {
  const { cluster, engine } = request.scope;
  const targets = request.scope.target
    ? [request.scope.target]
    : [
        ...new Set(
          (await store.list({ cluster, engine })).flatMap((e) => (e.statefile ? [e.statefile.target] : [])),
        ),
      ].sort();
  const policies = targets.map((target) => ({ target, ...request.policyFor(target) }));
  const findings = await checkIntegrity(store, cluster, engine);
  const dryRun = request.dryRun === true;
  const results: TargetPrune[] = [];
  const deleted: string[] = [];
  await interruptible(
    async (signal) => {
      for (const { target, policy, source } of policies) {
        if (signal.aborted) throw new DeletesInterrupted([], signal.reason);
        const scope = { cluster, engine, target };
        const plan = planRetention(await store.list(scope), policy, store.now(), findings);
        let spared: string[] = [];
        if (!dryRun && plan.delete.length > 0) {
          await request.confirm?.(`Delete ${plan.delete.length} backup(s) of ${cluster}/${target}?`, signal);
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
        results.push({ target, policy, source, ...plan, spared });
      }
    },
    {
      describe: (signal) =>
        `interrupted by ${signal}: deleted ${deleted.length} backup(s)${deleted.length ? ` (${deleted.join(", ")})` : ""}, ` +
        "each whole; every other backup is kept as it was; --prune again finishes",
      ...(request.notice ? { notice: request.notice } : {}),
    },
  );
  return { dryRun, targets: results };
}
