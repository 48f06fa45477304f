/**
 * WAL retention (docs/adr/0014, amended for point-in-time recovery; docs/adr/0021): after a target's backups are
 * pruned, the streamed WAL segments no kept physical base backup needs are deleted, and nothing else.
 *
 * A base backup on timeline T starting at LSN S replays, from S on, T's segments and those of the timelines that
 * descend from T (a restore follows the newest timeline). So a segment on timeline L is needed when some kept base
 * backup on L or on one of L's ancestors starts in or before it. What goes:
 * - segments before the start segment of every kept base backup on their timeline's line of descent;
 * - segments on a timeline that is only an ancestor of the kept base backups' timelines (the WAL of the old branch
 *   after the switch is never replayed by them, and before it lies before their start).
 * What stays, whatever the above says:
 * - everything, when there is no succeeded physical base backup (WAL grows until one exists), no head to tell
 *   whose WAL it is, or a base backup of another system or segment size than the head;
 * - every segment on a timeline whose descent is unknown (no readable history file), or unrelated to every kept
 *   base backup (a branch no kept backup is on: only an operator knows what it is for);
 * - every segment stored after a running physical base backup began, less a margin: it has no start LSN yet;
 * - history files (a few hundred bytes each) and the head.
 *
 * Deletes go oldest first, one object at a time, so an interrupted prune leaves extra WAL at the old end and never a
 * hole a restore would stop at.
 */
import {
  parseLsn,
  type PhysicalBackupInfo,
  segmentOf,
  walFileName,
  type WalListing,
  type WalSegmentObject,
} from "../domain/wal.js";
import { failpoint } from "../util/failpoint.js";
import type { BackupEntry, BackupStore } from "./backup-store.js";
import { descendsFrom, loadLineage, type TimelineLineage } from "./wal-timelines.js";
import type { WalArchive } from "./wal-archive.js";

/**
 * WAL stored this long before a running base backup began is kept for it too: the bucket's clock and capsule's
 * may differ, and the start segment may have been stored (as a partial) a little before the run wrote its statefile.
 */
export const RUNNING_BACKUP_WAL_MARGIN_MS = 60 * 60 * 1000;

export interface KeptBase {
  readonly backupId: string;
  readonly physical: PhysicalBackupInfo;
}

export interface RunningBase {
  readonly backupId: string;
  readonly startedAt: string;
}

export interface WalRetentionPlan {
  /** What goes, oldest first (segment number, then timeline, a partial after its complete segment). */
  readonly delete: readonly WalSegmentObject[];
  readonly deleteBytes: number;
  /** Segments listed. */
  readonly listed: number;
  /** Why everything is kept, when it is; printed by `--prune`. */
  readonly keptAll?: string;
  /** The oldest start a kept base backup needs, as the first WAL file kept on its timeline, for messages. */
  readonly keptFrom?: string;
}

/** The physical base backups among a target's backups that retention keeps, and those still running. */
export function basesOf(entries: readonly BackupEntry[]): { kept: KeptBase[]; running: RunningBase[] } {
  const kept: KeptBase[] = [];
  const running: RunningBase[] = [];
  for (const e of entries) {
    if (e.statefile?.kind !== "physical") continue;
    // Damaged or unproven succeeded backups kept for an operator keep their WAL too: nothing kept loses its chain.
    if (e.state === "succeeded" && e.statefile.physical)
      kept.push({ backupId: e.ref.backupId, physical: e.statefile.physical });
    if (e.state === "running") running.push({ backupId: e.ref.backupId, startedAt: e.statefile.startedAt });
  }
  return { kept, running };
}

export function planWalRetention(input: {
  listing: WalListing;
  lineage: TimelineLineage;
  kept: readonly KeptBase[];
  running: readonly RunningBase[];
}): WalRetentionPlan {
  const { listing, lineage, kept, running } = input;
  const listed = listing.segments.length;
  const keepAll = (keptAll: string): WalRetentionPlan => ({ delete: [], deleteBytes: 0, listed, keptAll });
  if (listed === 0) return { delete: [], deleteBytes: 0, listed };
  if (kept.length === 0)
    return keepAll("no succeeded physical base backup: all WAL kept (it grows until a base backup exists)");
  const head = listing.head;
  if (!head) return keepAll("no head.json: whose WAL this is cannot be told, all of it is kept");
  const foreign = kept.find(
    (b) =>
      b.physical.systemIdentifier !== head.systemIdentifier || b.physical.walSegmentSize !== head.segmentSize,
  );
  if (foreign) {
    return keepAll(
      `base backup ${foreign.backupId} is of system ${foreign.physical.systemIdentifier} ` +
        `(${foreign.physical.walSegmentSize}-byte segments), the WAL head of ${head.systemIdentifier} ` +
        `(${head.segmentSize}-byte segments): all WAL kept until an operator resolves it (--check)`,
    );
  }
  const size = head.segmentSize;
  const startOf = (b: KeptBase) => segmentOf(parseLsn(b.physical.startLsn), size);

  // The first segment each timeline must keep from, or "all" when it must keep everything.
  const cuts = new Map<number, number | "all">();
  const cutOf = (timeline: number): number | "all" => {
    const known = cuts.get(timeline);
    if (known !== undefined) return known;
    let cut: number | "all" = "all";
    if (lineage.ancestorsOf(timeline) !== undefined) {
      const onLine = kept.filter((b) => descendsFrom(lineage, timeline, b.physical.timeline) === true);
      if (onLine.length > 0) cut = Math.min(...onLine.map(startOf));
      else if (kept.some((b) => descendsFrom(lineage, b.physical.timeline, timeline) === true))
        cut = Number.POSITIVE_INFINITY;
    } else {
      // Unknown descent: only a base backup on this very timeline tells where its WAL is needed from, and only
      // then is anything deleted — never all of it.
      const here = kept.filter((b) => b.physical.timeline === timeline);
      if (here.length > 0) cut = Math.min(...here.map(startOf));
    }
    cuts.set(timeline, cut);
    return cut;
  };

  const runningSince = running.length
    ? Math.min(...running.map((r) => Date.parse(r.startedAt))) - RUNNING_BACKUP_WAL_MARGIN_MS
    : undefined;
  const goes = listing.segments.filter((s) => {
    const cut = cutOf(s.timeline);
    if (cut === "all" || s.segno >= cut) return false;
    if (runningSince !== undefined && (!s.storedAt || s.storedAt.getTime() >= runningSince)) return false;
    return true;
  });
  goes.sort((a, b) => a.segno - b.segno || a.timeline - b.timeline || Number(a.partial) - Number(b.partial));
  const oldest = kept.reduce((a, b) => (startOf(b) < startOf(a) ? b : a));
  return {
    delete: goes,
    deleteBytes: goes.reduce((sum, s) => sum + s.sizeBytes, 0),
    listed,
    keptFrom: walFileName(oldest.physical.timeline, startOf(oldest), size),
  };
}

/** The plan for one target's WAL as the bucket holds it now, given the target's backups as they will be kept. */
export async function planStoredWal(
  store: BackupStore,
  cluster: string,
  target: string,
  keptEntries: readonly BackupEntry[],
): Promise<{ archive: WalArchive; plan: WalRetentionPlan }> {
  const archive = store.walArchive(cluster, target);
  const { kept, running } = basesOf(keptEntries);
  const listing = await archive.listing(kept[0]?.physical.walSegmentSize);
  const lineage = await loadLineage(archive, listing);
  return { archive, plan: planWalRetention({ listing, lineage, kept, running }) };
}

/** A WAL object's identity across two listings. */
function keyOf(s: WalSegmentObject): string {
  return `${s.name}${s.partial ? ".partial" : ""}`;
}

/**
 * Deletes what `shown` lets go and `fresh` (planned after the backups were deleted, from a new listing) still does,
 * oldest first, one segment at a time. `onDeleted` hears each one; an aborted `signal` stops the deletes between two
 * segments with `WalDeletesInterrupted`.
 */
export async function deleteWal(
  archive: WalArchive,
  shown: WalRetentionPlan,
  fresh: WalRetentionPlan,
  onDeleted: (segment: WalSegmentObject) => void,
  signal?: AbortSignal,
): Promise<void> {
  const stillGoing = new Set(fresh.delete.map(keyOf));
  const going = shown.delete.filter((s) => stillGoing.has(keyOf(s)));
  for (const [i, segment] of going.entries()) {
    if (signal?.aborted) throw new WalDeletesInterrupted(signal.reason);
    await archive.deleteSegments([segment]);
    onDeleted(segment);
    if (i < going.length - 1) await failpoint("wal-delete-between-segments", signal).catch(() => undefined);
  }
}

/** A WAL prune stopped between two segment deletes. */
export class WalDeletesInterrupted extends Error {
  constructor(cause: unknown) {
    super("interrupted between WAL deletes", { cause });
  }
}
