/**
 * The point-in-time side of the PostgreSQL engine (docs/adr/0021): the restore fields checked and turned into a
 * recovery target, the restore's report for the operator, and the drill of a physical backup.
 */
import { configError } from "../connection-fields.js";
import { rm } from "node:fs/promises";
import path from "node:path";
import { recoveryTargetOf } from "../../domain/recovery-target.js";
import type {
  DrillResult,
  EngineContext,
  Fields,
  PointInTimeSource,
  RecoveryTarget,
  RestoreContext,
  RestoreResult,
} from "../engine.js";
import { scratchDir, serviceAccount } from "../scratch-server.js";
import { checkRecoveredCluster } from "./physical-check.js";
import { restorePhysical } from "./physical-restore.js";

/** Throwaway clusters of physical drills live in `$TMPDIR/capsule-verify-pgpitr-*`. */
export const PITR_SCRATCH_LABEL = "verify-pgpitr";

/** The pg-specific half of the restore fields' check; the target itself is domain/recovery-target.ts's. */
export function checkPointInTimeFields(fields: Fields): RecoveryTarget {
  for (const field of ["inPlace", "toDatabase", "noOwner"]) {
    if (fields[field] !== undefined && fields[field] !== false) {
      throw configError(field, `{${field}} does not apply to a point-in-time restore ({physical})`);
    }
  }
  if (typeof fields["toDataDir"] !== "string" || fields["toDataDir"] === "") {
    throw configError("toDataDir", "{physical} restores into a new data directory: add {toDataDir} DIR");
  }
  return recoveryTargetOf(fields);
}

export async function restorePointInTime(
  from: PointInTimeSource,
  target: RecoveryTarget,
  fields: Fields,
  context: RestoreContext,
): Promise<RestoreResult> {
  const dataDir = fields["toDataDir"] as string;
  const outcome = await restorePhysical({ ...from, target, dataDir }, context);
  const stopped = [
    outcome.stoppedAtLsn ? `redo stopped at LSN ${outcome.stoppedAtLsn}` : undefined,
    outcome.lastTransactionAt ? `last transaction committed at ${outcome.lastTransactionAt}` : undefined,
  ].filter(Boolean);
  return {
    lines: [
      `restored ${outcome.backupId} plus WAL to ${outcome.target} into ${outcome.dataDir}` +
        (stopped.length ? `: ${stopped.join(", ")}` : ""),
      ...(outcome.reachedEndInstead
        ? [
            "the target lies after the last transaction in the WAL: recovered to the end of the WAL (the same data)",
          ]
        : []),
      ...(outcome.stopReason ? [outcome.stopReason] : []),
      `the cluster is stopped and promoted (a primary${outcome.timeline ? ` on timeline ${outcome.timeline}` : ""}); ` +
        `start it with: pg_ctl start -D ${outcome.dataDir} (PostgreSQL ${outcome.postgresMajor}, as the data directory's owner)`,
    ],
    document: outcome,
  };
}

/** Restores the backup with all its WAL into a throwaway directory, starts it, checks it answers, removes it. */
export async function drillPointInTime(
  from: PointInTimeSource,
  context: EngineContext,
): Promise<DrillResult> {
  // Marked with its owner's PID like every throwaway cluster: --check finds it if capsule is killed.
  const dir = await scratchDir(PITR_SCRATCH_LABEL, serviceAccount("postgres"));
  try {
    const dataDir = path.join(dir, "restored");
    const outcome = await restorePhysical(
      { ...from, target: { kind: "latest" }, dataDir },
      { ...context, onNotice: context.onNotice ?? (() => undefined) },
    );
    context.onPhase("starting the recovered cluster and querying it");
    const check = await checkRecoveredCluster(dataDir, outcome.postgresMajor, context.signal);
    return {
      method: `point-in-time restore with all the WAL in the bucket into a throwaway PostgreSQL ${outcome.postgresMajor}`,
      details:
        `recovered to ${outcome.stoppedAtLsn ?? "the end of the WAL"}` +
        `${outcome.lastTransactionAt ? ` (last transaction ${outcome.lastTransactionAt})` : ""}; ${check}`,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
