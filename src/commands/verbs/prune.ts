import { Option, UsageError } from "clipanion";
import { prune, type WalPrune } from "../../runtime/prune.js";
import {
  applyFlags,
  describePolicy,
  FLAG_OF,
  type FoundPolicy,
  policiesFromCluster,
  policiesFromPlans,
  type RetentionFlags,
} from "../../runtime/retention-policy.js";
import type { RetentionDecision } from "../../storage/retention.js";
import { formatBytes } from "../../util/format.js";
import { decisionsTable, type Report } from "../render.js";
import { flag, StoreVerb } from "./verb-command.js";

/** `capsule <engine> --prune`: the targets' retention, as their schedule applies it (runtime/prune.ts). */
export class PruneVerb extends StoreVerb {
  static override summary =
    "Apply the target's retention (--target, or every target): the plan's policy from --plans, else from the " +
    "target's CronJob when the bucket comes from the kube context; --keep-* flags override it field by field; " +
    "with neither, --keep-last is required. Only restorable backups (succeeded, verification not failed, artifact " +
    "whole) fill keep slots, verified ones first; the newest restorable and the newest verified backup are never " +
    "deleted, nor is a running one; damaged backups are left for an operator. PostgreSQL physical base backups and " +
    "logical dumps are kept apart, each under the whole policy; streamed WAL no kept base backup needs is deleted " +
    "after them, oldest first (all of it is kept while no base backup exists)";
  readonly verb = "prune";
  prune = this.verbFlag();
  override target = Option.String("--target", { description: "The target to prune (default: every target)" });
  override yes = flag.yes();
  override sse = flag.sse();
  override sseKmsKeyId = flag.sseKmsKeyId();
  dryRun = Option.Boolean("--dry-run", false, { description: "Show what would go and why, delete nothing" });
  plans = Option.String("--plans", {
    description: "A directory (or file) of plans whose retention applies to their targets",
  });
  keepLast = Option.String("--keep-last", {
    description: "Newest restorable backups to keep (default: the plan's)",
  });
  keepDaily = Option.String("--keep-daily", {
    description: "Also keep one restorable backup (verified first) of each of the last N days",
  });
  keepWeekly = Option.String("--keep-weekly", { description: "… of each of the last N ISO weeks" });
  keepMonthly = Option.String("--keep-monthly", { description: "… of each of the last N months" });
  failedGraceHours = Option.String("--failed-grace-hours", {
    description: "Keep failed runs and failed verifications this long (default: the plan's, else 72)",
  });

  protected async perform(): Promise<Report> {
    const flags = this.retentionFlags();
    const store = await this.store();
    const scope = { ...this.scope(), ...(this.target ? { target: this.target } : {}) };
    const { policies, searched } = await this.foundPolicies(scope.cluster);
    const pruned = await prune(store, {
      scope,
      policyFor: (target) => applyFlags(target, policies.get(target), flags, { ...scope, searched }),
      dryRun: this.dryRun,
      confirm: this.confirmAction,
      notice: (line) => this.note(line),
    });
    const verb = this.dryRun ? "would delete" : "deleted";
    const state = (d: RetentionDecision) =>
      `${d.kind === "physical" ? "physical " : ""}${d.state}${d.verification && d.verification !== "unverified" ? ` (${d.verification})` : ""}`;
    const rows = pruned.targets.flatMap((p) => [
      ...p.delete.map((d) => {
        const spared = p.spared.includes(d.backupId);
        return {
          backupId: d.backupId,
          target: p.target,
          state: state(d),
          decision: spared ? "keep" : verb,
          reason: spared ? "changed since the plan" : d.reason,
        };
      }),
      ...p.keep.map((d) => ({ ...d, target: p.target, state: state(d), decision: "keep" })),
    ]);
    const header = pruned.targets.flatMap((p) => [
      `${p.target}: ${describePolicy(p.policy)} (from ${p.source})`,
      ...(p.wal ? [`${p.target} WAL: ${describeWal(p.wal, this.dryRun)}`] : []),
    ]);
    return {
      document: pruned,
      table: [...header, rows.length ? decisionsTable(rows) : "no backups"].join("\n"),
    };
  }

  /** The plan's retention per target, from `--plans` or else the cluster the bucket was found through. */
  private async foundPolicies(
    cluster: string,
  ): Promise<{ policies: Map<string, FoundPolicy>; searched: string[] }> {
    if (this.plans !== undefined)
      return {
        policies: await policiesFromPlans(this.plans, cluster, this.engine.name),
        searched: [`--plans ${this.plans}`],
      };
    if (this.discoveredCluster !== undefined)
      return {
        policies: await policiesFromCluster(cluster, this.engine.name, this.env),
        searched: ["the cluster's CronJobs"],
      };
    return { policies: new Map(), searched: [] };
  }

  private retentionFlags(): RetentionFlags {
    const flags: RetentionFlags = {};
    for (const [field, flag] of Object.entries(FLAG_OF) as Array<[keyof RetentionFlags, string]>) {
      const value = this[field];
      if (value === undefined) continue;
      const min = field === "keepLast" ? 1 : 0;
      const n = Number(value);
      if (!Number.isInteger(n) || n < min)
        throw new UsageError(`${flag} must be an integer >= ${min} (got ${JSON.stringify(value)})`);
      flags[field] = n;
    }
    return flags;
  }
}

/** One line per target: how much WAL goes, and from where it is kept (or why all of it is). */
function describeWal(wal: WalPrune, dryRun: boolean): string {
  if (wal.keptAll) return `${wal.listed} segment(s), all kept: ${wal.keptAll}`;
  const from = wal.keptFrom ? `; kept from ${wal.keptFrom}, the oldest kept base backup's start` : "";
  if (wal.segments === 0) return `none of ${wal.listed} segment(s) goes${from}`;
  if (dryRun)
    return `would delete ${wal.segments} of ${wal.listed} segment(s) (${formatBytes(wal.bytes)})${from}`;
  return `deleted ${wal.deleted} of ${wal.listed} segment(s) (${formatBytes(wal.deletedBytes)})${from}`;
}
