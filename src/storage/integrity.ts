/**
 * The integrity sweep: what a listing cannot see. Finds succeeded backups whose artifact is missing or has another
 * size than recorded, unreadable statefiles, orphans — objects under a backup folder that has no statefile (a
 * run killed before its first write, or a delete that crashed after removing the statefile's twin) — and the
 * unfinished uploads a killed run left (billed, and shown by no listing), except those of a run that may be alive.
 * For PostgreSQL targets with streamed WAL (docs/adr/0021), `checkWal` finds what would stop a point-in-time
 * restore: a gap in the chain, a head claiming more than is stored, timelines without history, WAL of another
 * system than the base backups, a segment that does not decode.
 */
import type { BackupEntry, BackupObject, BackupStore } from "./backup-store.js";
import { STATEFILE_NAME } from "./layout.js";
import { basesOf } from "./wal-retention.js";
import { descendsFrom, loadLineage, timelineOfSegment } from "./wal-timelines.js";
import { type EngineName } from "../domain/backup.js";
import { CapsuleError, ErrorCode, NotFoundError } from "../domain/errors.js";
import { historyFileName, parseLsn, segmentOf, walFileName, type WalSegmentObject } from "../domain/wal.js";

export type FindingKind =
  | "missing-artifact"
  | "size-mismatch"
  | "corrupt-statefile"
  | "orphan"
  | "incomplete-upload"
  | WalFindingKind;

export type WalFindingKind =
  | "wal-gap"
  | "wal-head-past-listing"
  | "wal-timeline-without-history"
  | "wal-system-mismatch"
  | "wal-undecodable";

export interface Finding {
  readonly kind: FindingKind;
  readonly backupId: string;
  /** The target, for findings about its WAL rather than one backup. */
  readonly target?: string;
  /** The object the finding is about. */
  readonly key: string;
  readonly detail: string;
}

export async function checkIntegrity(
  store: BackupStore,
  cluster: string,
  engine: EngineName,
): Promise<Finding[]> {
  return (await sweepIntegrity(store, cluster, engine)).findings;
}

/**
 * The integrity sweep and the engine's backups it listed, for callers that need both (`--check`'s WAL sweep, prune's
 * targets): one listing pass over the statefiles, not two. The objects are listed before the statefiles, never
 * after: a backup begun in between then has its statefile listed too, and is never taken for an orphan (which
 * `--check --yes` deletes).
 */
export async function sweepIntegrity(
  store: BackupStore,
  cluster: string,
  engine: EngineName,
): Promise<{ findings: Finding[]; entries: BackupEntry[] }> {
  const folders = new Map<string, Map<string, BackupObject>>();
  for (const object of await store.listBackupObjects(cluster, engine)) {
    const files = folders.get(object.backupId) ?? new Map<string, BackupObject>();
    files.set(object.name, object);
    folders.set(object.backupId, files);
  }
  const listed = await store.list({ cluster, engine });
  const entries = new Map(listed.map((e) => [e.ref.backupId, e]));
  const findings: Finding[] = [];
  for (const [backupId, files] of [...folders].sort(([a], [b]) => (a < b ? 1 : -1))) {
    const ref = { cluster, engine, backupId };
    const entry = entries.get(backupId);
    if (!files.has(STATEFILE_NAME) || !entry) {
      for (const { key } of files.values()) {
        // As listed: a stranger's folder need not be a name capsule would build a key from.
        findings.push({ kind: "orphan", backupId, key, detail: "no statefile" });
      }
      continue;
    }
    if (entry.state === "corrupt") {
      findings.push({
        kind: "corrupt-statefile",
        backupId,
        key: entry.key,
        detail: entry.problem ?? "unreadable",
      });
      continue;
    }
    const artifact = entry.statefile?.artifact;
    if (entry.state !== "succeeded" || !artifact) continue;
    const size = files.get(artifact.name)?.sizeBytes;
    const key = store.artifactKey(ref, artifact.name);
    if (size === undefined) {
      findings.push({ kind: "missing-artifact", backupId, key, detail: `${artifact.name} is gone` });
    } else if (size !== artifact.sizeBytes) {
      findings.push({
        kind: "size-mismatch",
        backupId,
        key,
        detail: `${size} bytes stored, ${artifact.sizeBytes} recorded`,
      });
    }
  }
  for (const { backupId, key } of await store.listIncompleteUploads(cluster, engine)) {
    // A running run with a fresh heartbeat is still uploading: its upload is not a leftover.
    if (entries.get(backupId)?.state === "running") continue;
    findings.push({
      kind: "incomplete-upload",
      backupId,
      key,
      detail: "unfinished upload of a run that ended",
    });
  }
  return { findings, entries: listed };
}

/**
 * What would stop a point-in-time restore of `target` (docs/adr/0021), from one listing of its WAL and its history
 * files, given the target's backups: segments missing between the oldest physical base backup's start and the head,
 * a head past the last stored segment, a timeline without its history file, base backups of another system than the
 * head, and — from a sample of two, the oldest needed and the newest complete segment — WAL that does not decode.
 * WAL findings name no backup (`backupId` is empty) unless one backup is at fault.
 */
export async function checkWal(
  store: BackupStore,
  cluster: string,
  target: string,
  entries: readonly BackupEntry[],
): Promise<Finding[]> {
  const archive = store.walArchive(cluster, target);
  const { kept } = basesOf(entries);
  const listing = await archive.listing(kept[0]?.physical.walSegmentSize);
  if (listing.segments.length === 0 && !listing.head) return [];
  const lineage = await loadLineage(archive, listing);
  const findings: Finding[] = [];
  const wal = (kind: WalFindingKind, key: string, detail: string, backupId = ""): void => {
    findings.push({ kind, backupId, target, key, detail });
  };

  const timelines = new Set(listing.segments.map((s) => s.timeline));
  if (listing.head) timelines.add(listing.head.timeline);
  for (const timeline of [...timelines].sort((a, b) => a - b)) {
    if (timeline === 1 || listing.historyTimelines.includes(timeline)) continue;
    const count = listing.segments.filter((s) => s.timeline === timeline).length;
    wal(
      "wal-timeline-without-history",
      historyFileName(timeline),
      `${count} segment(s) on timeline ${timeline} and no history file: a restore cannot follow the switch to it`,
    );
  }

  const head = listing.head;
  if (!head) return findings;
  const size = head.segmentSize;
  for (const b of kept.filter((b) => b.physical.systemIdentifier !== head.systemIdentifier)) {
    wal(
      "wal-system-mismatch",
      "head.json",
      `base backup of system ${b.physical.systemIdentifier}, the WAL head of ${head.systemIdentifier}: ` +
        "its WAL is not this one",
      b.backupId,
    );
  }
  const onLine = (timeline: number): boolean =>
    lineage.ancestorsOf(head.timeline) !== undefined
      ? descendsFrom(lineage, head.timeline, timeline) === true
      : timeline <= head.timeline;
  const present = new Map<number, WalSegmentObject>();
  for (const s of listing.segments) if (onLine(s.timeline) && !present.has(s.segno)) present.set(s.segno, s);
  const nameOf = (segno: number) =>
    walFileName(timelineOfSegment(lineage, head.timeline, segno, size) ?? head.timeline, segno, size);

  const archived = parseLsn(head.archivedLsn);
  const last = archived > 0n ? segmentOf(archived - 1n, size) : undefined;
  const stored = [...present.keys()].sort((a, b) => a - b);
  const newestStored = stored.at(-1);
  if (last !== undefined && !present.has(last)) {
    wal(
      "wal-head-past-listing",
      "head.json",
      `head.json says WAL is archived up to ${head.archivedLsn} (in ${nameOf(last)}); the newest segment stored on ` +
        `timeline ${head.timeline}'s line is ${newestStored === undefined ? "none" : nameOf(newestStored)}`,
    );
  }

  const bases = kept.filter(
    (b) =>
      b.physical.systemIdentifier === head.systemIdentifier &&
      b.physical.walSegmentSize === size &&
      onLine(b.physical.timeline),
  );
  if (bases.length === 0 || last === undefined) return findings;
  const from = Math.min(...bases.map((b) => segmentOf(parseLsn(b.physical.startLsn), size)));
  // What lies past the newest stored segment is the head's finding, not a gap.
  const until = Math.min(last, newestStored ?? from - 1);
  let missingFrom: number | undefined;
  for (let segno = from; segno <= until + 1; segno++) {
    const missing = segno <= until && !present.has(segno);
    if (missing && missingFrom === undefined) missingFrom = segno;
    if (!missing && missingFrom !== undefined) {
      const count = segno - missingFrom;
      const cut = bases.filter((b) => segmentOf(parseLsn(b.physical.startLsn), size) < missingFrom!);
      wal(
        "wal-gap",
        nameOf(missingFrom),
        `missing ${nameOf(missingFrom)}${count > 1 ? ` … ${nameOf(segno - 1)}` : ""} (${count} segment(s)): ` +
          `a restore from ${cut.map((b) => b.backupId).join(", ")} stops before it`,
      );
      missingFrom = undefined;
    }
  }

  // A cheap sample: the oldest segment a base backup needs and the newest complete one are fetched and decoded.
  const sample = new Set<WalSegmentObject>();
  const oldestNeeded = stored.find((segno) => segno >= from);
  if (oldestNeeded !== undefined) sample.add(present.get(oldestNeeded)!);
  const newestComplete = listing.segments.filter((s) => !s.partial && onLine(s.timeline)).at(-1);
  if (newestComplete) sample.add(newestComplete);
  for (const segment of sample) {
    try {
      await archive.fetchSegment(segment, size);
    } catch (error) {
      // Without an age identity the sample cannot be opened; a segment pruned meanwhile is no finding.
      if (error instanceof NotFoundError) continue;
      if (error instanceof CapsuleError && error.code === ErrorCode.Config) break;
      if (!(error instanceof CapsuleError) || error.code !== ErrorCode.ChecksumMismatch) throw error;
      wal("wal-undecodable", segment.name, error.message);
    }
  }
  return findings;
}
