/**
 * Point-in-time restore, engine-agnostic (docs/adr/0021): which base backup and which WAL a restore to a time or an
 * LSN uses, whether the bucket can reach it at all (`recoveryWindow`), and the restore recorded in the chosen
 * backup's statefile. The engine's `restorePointInTime` does the rest. Also the window `--list`/`--describe` show.
 */
import type { EngineName } from "../domain/backup.js";
import { CapsuleError, ErrorCode, FieldError } from "../domain/errors.js";
import type { Statefile } from "../domain/statefile.js";
import {
  parseLsn,
  recoveryWindow,
  type PhysicalBackupInfo,
  type RecoveryWindow,
  type WalListing,
} from "../domain/wal.js";
import type {
  DrillResult,
  Engine,
  EngineContext,
  Fields,
  RecoveryTarget,
  RestoreResult,
} from "../engines/engine.js";
import type { BackupEntry, BackupStore } from "../storage/backup-store.js";
import type { WalArchive } from "../storage/wal-archive.js";
import { recordedRestore, type RestoreTrigger } from "./record-restore.js";

export interface PhysicalBackup {
  readonly entry: BackupEntry;
  readonly statefile: Statefile;
  readonly physical: PhysicalBackupInfo;
}

/** What the bucket holds for one target's point-in-time recovery. */
export interface PointInTimeState {
  readonly target: string;
  /** Succeeded physical base backups, newest first. */
  readonly backups: readonly PhysicalBackup[];
  readonly wal: WalArchive;
  readonly listing: WalListing;
  readonly window: RecoveryWindow | undefined;
}

export function physicalBackupsOf(entries: readonly BackupEntry[]): PhysicalBackup[] {
  return entries.flatMap((entry) =>
    entry.state === "succeeded" && entry.statefile?.kind === "physical" && entry.statefile.physical
      ? [{ entry, statefile: entry.statefile, physical: entry.statefile.physical }]
      : [],
  );
}

export async function pointInTimeState(
  store: BackupStore,
  scope: { cluster: string; engine: EngineName; target: string },
  entries?: readonly BackupEntry[],
): Promise<PointInTimeState> {
  const all = entries ?? (await store.list(scope));
  const backups = physicalBackupsOf(all.filter((e) => e.statefile?.target === scope.target)).sort(
    (a, b) => Date.parse(b.physical.endTime) - Date.parse(a.physical.endTime),
  );
  const wal = store.walArchive(scope.cluster, scope.target);
  const listing = await wal.listing(backups[0]?.physical.walSegmentSize);
  const window = recoveryWindow(
    backups.map((b) => ({ backupId: b.entry.ref.backupId, physical: b.physical })),
    listing,
  );
  return { target: scope.target, backups, wal, listing, window };
}

/** `earliest 2026-12-05T10:00:00Z (LSN 0/3000100, base backup ID) … latest 2026-12-05T13:20:11Z (LSN 0/5A00000)` */
export function describeWindow(window: RecoveryWindow): string {
  return (
    `earliest ${window.earliest.time} (LSN ${window.earliest.lsn}, base backup ${window.earliest.backupId}) … ` +
    `latest ${window.latest.time} (LSN ${window.latest.lsn})`
  );
}

/** The windows of every target that has physical backups, for `--list` and `--describe`. */
export async function pointInTimeWindows(
  store: BackupStore,
  scope: { cluster: string; engine: EngineName },
  entries: readonly BackupEntry[],
): Promise<Array<{ target: string; window: RecoveryWindow | undefined }>> {
  const targets = [...new Set(physicalBackupsOf(entries).map((b) => b.statefile.target))].sort();
  const windows = [];
  for (const target of targets) {
    const state = await pointInTimeState(store, { ...scope, target }, entries);
    windows.push({ target, window: state.window });
  }
  return windows;
}

export interface PointInTimeRequest {
  readonly cluster: string;
  readonly engine: Engine;
  /** The target whose backups and WAL are used; may be left out when the id names a backup or only one target has any. */
  readonly target?: string;
  readonly id?: string;
  readonly recoveryTarget: RecoveryTarget;
  readonly fields: Fields;
  readonly trigger?: RestoreTrigger;
  readonly onPhase?: (phase: string) => void;
  readonly onNotice?: (line: string) => void;
}

/** Chooses the base backup, refuses a target the bucket cannot reach, restores, and records it in the statefile. */
export async function restoreToPointInTime(
  store: BackupStore,
  request: PointInTimeRequest,
): Promise<RestoreResult> {
  const { engine, recoveryTarget } = request;
  if (!engine.restorePointInTime) {
    throw new CapsuleError(ErrorCode.Config, `${engine.name} has no point-in-time restore`);
  }
  const notice = request.onNotice ?? (() => undefined);
  const scope = { cluster: request.cluster, engine: engine.name };
  const entries = await store.list(scope);
  const named = request.id ? await store.get({ ...scope, backupId: request.id }) : undefined;
  const target = request.target ?? named?.statefile?.target ?? onlyTarget(entries);
  const state = await pointInTimeState(store, { ...scope, target }, entries);
  const chosen = chooseBackup(state, recoveryTarget, named);
  if (!state.window || !reachable(state, chosen)) {
    if (recoveryTarget.kind !== "latest") {
      throw new FieldError(
        ErrorCode.NotRestorable,
        recoveryTarget.kind === "time" ? "targetTime" : "targetLsn",
        `target ${target} has no streamed WAL in the bucket that connects to a base backup: only the end of a base ` +
          `backup can be restored (newest: ${chosen.entry.ref.backupId}, ${chosen.physical.endTime}); ` +
          `leave out {${recoveryTarget.kind === "time" ? "targetTime" : "targetLsn"}}`,
      );
    }
    notice(
      `no streamed WAL in the bucket connects to ${chosen.entry.ref.backupId}: restoring to the end of the base ` +
        `backup (${chosen.physical.endTime}, LSN ${chosen.physical.endLsn})`,
    );
  }
  const source = store.artifactSource(chosen.entry);
  await source.checkReadable();
  return recordedRestore(
    store,
    chosen.entry,
    { to: String(request.fields["toDataDir"]), ...(request.trigger && { trigger: request.trigger }) },
    (signal) =>
      engine.restorePointInTime!(
        { source, physical: chosen.physical, wal: state.wal, listing: state.listing },
        recoveryTarget,
        request.fields,
        { signal, onPhase: request.onPhase ?? (() => undefined), onNotice: notice },
      ),
    { notice },
  );
}

/** The drill of a physical backup: with its target's WAL, to the newest point the bucket holds. */
export async function drillPointInTime(
  store: BackupStore,
  entry: BackupEntry,
  engine: Engine,
  context: EngineContext,
): Promise<DrillResult> {
  const statefile = entry.statefile!;
  const state = await pointInTimeState(store, {
    cluster: statefile.cluster,
    engine: statefile.engine,
    target: statefile.target,
  });
  if (!engine.drillPointInTime || !statefile.physical) {
    throw new CapsuleError(
      ErrorCode.Config,
      `${entry.ref.backupId} is not a physical backup ${engine.name} can drill`,
    );
  }
  const withWal = reachable(state, { entry, statefile, physical: statefile.physical });
  return engine.drillPointInTime(
    {
      source: store.artifactSource(entry),
      physical: statefile.physical,
      wal: state.wal,
      // A base backup whose WAL chain does not reach the head is drilled alone, to its own end.
      listing: withWal ? state.listing : { segments: [], historyTimelines: [] },
    },
    context,
  );
}

function onlyTarget(entries: readonly BackupEntry[]): string {
  const targets = [...new Set(physicalBackupsOf(entries).map((b) => b.statefile.target))].sort();
  if (targets.length === 1) return targets[0]!;
  throw new FieldError(
    ErrorCode.Config,
    "target",
    targets.length === 0
      ? "there is no physical base backup in the bucket: take one with --create --physical"
      : `${targets.length} targets have physical backups (${targets.join(", ")}): choose one with {target}`,
  );
}

function reachable(state: PointInTimeState, backup: PhysicalBackup): boolean {
  return (
    recoveryWindow([{ backupId: backup.entry.ref.backupId, physical: backup.physical }], state.listing) !==
    undefined
  );
}

/**
 * The newest succeeded base backup that ends before the target and whose WAL reaches it (or the one `--id` names),
 * after refusing a target outside the window with one line that names the window.
 */
function chooseBackup(
  state: PointInTimeState,
  target: RecoveryTarget,
  named: BackupEntry | undefined,
): PhysicalBackup {
  const field = target.kind === "time" ? "targetTime" : "targetLsn";
  const window = state.window;
  if (window && target.kind !== "latest") {
    const outside =
      target.kind === "time"
        ? Date.parse(target.time) < Date.parse(window.earliest.time) ||
          Date.parse(target.time) > Date.parse(window.latest.time)
        : parseLsn(target.lsn) < parseLsn(window.earliest.lsn) ||
          parseLsn(target.lsn) > parseLsn(window.latest.lsn);
    if (outside) {
      throw new FieldError(
        ErrorCode.NotRestorable,
        field,
        `{${field}} ${target.kind === "time" ? target.time : target.lsn} is outside what target ${state.target} ` +
          `can be restored to: ${describeWindow(window)}`,
      );
    }
  }
  const endsBefore = (b: PhysicalBackup): boolean =>
    target.kind === "time"
      ? Date.parse(b.physical.endTime) <= Date.parse(target.time)
      : target.kind === "lsn"
        ? parseLsn(b.physical.endLsn) <= parseLsn(target.lsn)
        : true;
  if (named) {
    const backup = physicalBackupsOf([named])[0];
    if (!backup) {
      throw new FieldError(
        ErrorCode.NotRestorable,
        "id",
        `${named.ref.backupId} is ${named.state === "succeeded" ? "not a physical backup" : named.state}: a point-in-time restore starts from a succeeded physical base backup`,
      );
    }
    if (!endsBefore(backup)) {
      throw new FieldError(
        ErrorCode.NotRestorable,
        field,
        `{${field}} is before the end of ${backup.entry.ref.backupId} (${backup.physical.endTime}, LSN ${backup.physical.endLsn}): a restore from it cannot stop earlier`,
      );
    }
    return backup;
  }
  if (state.backups.length === 0) {
    throw new FieldError(
      ErrorCode.NotRestorable,
      "target",
      `target ${state.target} has no succeeded physical base backup: take one with --create --physical`,
    );
  }
  const connected = state.backups.filter((b) => reachable(state, b));
  const candidates = target.kind === "latest" && connected.length === 0 ? state.backups : connected;
  const chosen = candidates.find(endsBefore);
  if (!chosen) {
    throw new FieldError(
      ErrorCode.NotRestorable,
      field,
      `no base backup of target ${state.target} ends before {${field}}` +
        (window ? `: ${describeWindow(window)}` : ""),
    );
  }
  return chosen;
}
