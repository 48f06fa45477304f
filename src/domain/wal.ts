/**
 * PostgreSQL's write-ahead log as capsule keeps it for point-in-time recovery (docs/adr/0021): LSNs, WAL file names,
 * what the streamer records of its position, and what the engines see of the WAL in the bucket (a sink the streamer
 * writes into, a source a restore reads from). Pure: no I/O. The objects themselves are storage/wal-archive.ts's.
 */
import { CapsuleError, ErrorCode } from "./errors.js";

/** A WAL position: a byte offset in PostgreSQL's 64-bit WAL address space. */
export type Lsn = bigint;

const LSN_TEXT = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/** PostgreSQL's text form `16/B374D848`, as `pg_current_wal_lsn()` prints it. */
export function parseLsn(text: string): Lsn {
  const m = LSN_TEXT.exec(text.trim());
  if (!m) throw new CapsuleError(ErrorCode.Config, `${JSON.stringify(text)} is not an LSN (like 0/16B3748)`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

export function isLsn(text: string): boolean {
  return LSN_TEXT.test(text.trim());
}

export function formatLsn(lsn: Lsn): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** PostgreSQL's default; the server's own is read from it (`SHOW wal_segment_size`) and recorded. */
export const DEFAULT_WAL_SEGMENT_SIZE = 16 * 1024 * 1024;

const WAL_FILE_NAME = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/;
const HISTORY_FILE_NAME = /^([0-9A-F]{8})\.history$/;

function segmentsPerId(segmentSize: number): number {
  return 0x1_0000_0000 / segmentSize;
}

function hex8(value: number): string {
  return value.toString(16).toUpperCase().padStart(8, "0");
}

/** `000000010000000000000003`: timeline, then the segment number split as PostgreSQL splits it. */
export function walFileName(timeline: number, segno: number, segmentSize: number): string {
  const perId = segmentsPerId(segmentSize);
  return `${hex8(timeline)}${hex8(Math.floor(segno / perId))}${hex8(segno % perId)}`;
}

export function parseWalFileName(
  name: string,
  segmentSize: number,
): { timeline: number; segno: number } | undefined {
  const m = WAL_FILE_NAME.exec(name);
  if (!m) return undefined;
  const low = parseInt(m[3]!, 16);
  if (low >= segmentsPerId(segmentSize)) return undefined;
  return { timeline: parseInt(m[1]!, 16), segno: parseInt(m[2]!, 16) * segmentsPerId(segmentSize) + low };
}

/** `00000002.history`: how timeline 2 branched off its parents. */
export function historyFileName(timeline: number): string {
  return `${hex8(timeline)}.history`;
}

export function parseHistoryFileName(name: string): number | undefined {
  const m = HISTORY_FILE_NAME.exec(name);
  return m ? parseInt(m[1]!, 16) : undefined;
}

export function segmentOf(lsn: Lsn, segmentSize: number): number {
  return Number(lsn / BigInt(segmentSize));
}

export function segmentStart(segno: number, segmentSize: number): Lsn {
  return BigInt(segno) * BigInt(segmentSize);
}

/**
 * Where a target's WAL stream stands, written by the streamer beside the segments after every upload: what a
 * restore may reach, and what the status API reports as lag. Never a credential.
 */
export interface WalHead {
  readonly version: 1;
  /** The cluster's `system_identifier` (IDENTIFY_SYSTEM): WAL of another cluster is never mixed in. */
  readonly systemIdentifier: string;
  readonly timeline: number;
  readonly segmentSize: number;
  readonly slot: string;
  readonly serverVersion?: string;
  /** Every WAL byte before this LSN is durably in the bucket (and confirmed to the server as flushed). */
  readonly archivedLsn: string;
  /** When `archivedLsn` last advanced (ISO, the streamer's clock). */
  readonly archivedAt: string;
  /**
   * The server's time (ISO) up to which the bucket holds all the WAL the server had written: every transaction
   * committed before it can be restored. The latest point a restore to a time can reach.
   */
  readonly coveredUntil: string;
  /** The server's WAL end as last reported to the streamer, and when (ISO, the streamer's clock). */
  readonly serverLsn: string;
  readonly serverLsnAt: string;
  /** When this head was written (ISO, the streamer's clock). */
  readonly updatedAt: string;
}

/** One WAL segment object in the bucket. */
export interface WalSegmentObject {
  readonly timeline: number;
  readonly segno: number;
  /** The WAL file name PostgreSQL asks for (`restore_command`'s %f). */
  readonly name: string;
  /** The segment still being written: its bytes end at the head's `archivedLsn`, zero-padded to the full size. */
  readonly partial: boolean;
  /** Stored age-encrypted (`.zst.age`); absent when unknown, then the archive finds out. */
  readonly encrypted?: boolean;
  /** Stored bytes (compressed, encrypted when the archive is). */
  readonly sizeBytes: number;
  readonly storedAt?: Date;
}

/** What the bucket holds of one target's WAL, from one listing. */
export interface WalListing {
  /** Sorted by timeline, then segment number; a partial segment after the complete one of the same name, if any. */
  readonly segments: readonly WalSegmentObject[];
  /** Timelines with a history file in the bucket. */
  readonly historyTimelines: readonly number[];
  readonly head?: WalHead;
}

/** Where the streamer puts WAL. Implemented by storage/wal-archive.ts: compression, encryption and keys are its. */
export interface WalSink {
  /**
   * Stores one segment's bytes. `bytes` is the whole segment (complete), or its start up to what has been received
   * (partial: stored zero-padded to the segment size, replacing the previous partial of that segment). Resolves once
   * the bytes are durable. Storing the complete segment removes its partial.
   */
  putSegment(segment: {
    timeline: number;
    segno: number;
    segmentSize: number;
    bytes: Uint8Array;
    partial: boolean;
  }): Promise<void>;
  putHistory(timeline: number, content: Uint8Array): Promise<void>;
  writeHead(head: WalHead): Promise<void>;
  readHead(): Promise<WalHead | undefined>;
}

/** What a restore reads of the WAL in the bucket. */
export interface WalSource {
  listing(): Promise<WalListing>;
  /** The segment as PostgreSQL reads it: decompressed, decrypted, full size. Rejects if it does not check out. */
  fetchSegment(segment: WalSegmentObject, segmentSize: number): Promise<Buffer>;
  /** The history file of `timeline`, or undefined if the bucket has none. */
  fetchHistory(timeline: number): Promise<Buffer | undefined>;
}

/** A physical base backup's place in the WAL, as its statefile records it (`kind: "physical"`). */
export interface PhysicalBackupInfo {
  readonly systemIdentifier: string;
  readonly timeline: number;
  /** The checkpoint the backup starts from (`pg_basebackup`'s "write-ahead log start point"). */
  readonly startLsn: string;
  /** Where the cluster is consistent: a restore can stop no earlier than here. */
  readonly endLsn: string;
  /** The server's time at the end of the backup: the earliest time a restore from it can reach. */
  readonly endTime: string;
  readonly walSegmentSize: number;
  /** The backup_manifest's name inside the archive, when the server wrote one (PostgreSQL 13+). */
  readonly manifest?: string;
}

/** The earliest and latest points a point-in-time restore can reach. */
export interface RecoveryWindow {
  readonly earliest: { readonly time: string; readonly lsn: string; readonly backupId: string };
  readonly latest: { readonly time: string; readonly lsn: string };
}

/**
 * The window a point-in-time restore can reach from these base backups and this WAL: from the end of the oldest
 * base backup whose WAL chain reaches the head without a gap, to the head's `coveredUntil`. Undefined when no base
 * backup connects to the streamed WAL.
 */
export function recoveryWindow(
  backups: ReadonlyArray<{ backupId: string; physical: PhysicalBackupInfo }>,
  listing: WalListing,
): RecoveryWindow | undefined {
  const head = listing.head;
  if (!head) return undefined;
  const size = head.segmentSize;
  // A segment number counts as present on any timeline up to the head's: which timeline a restore follows at a
  // switch is PostgreSQL's to decide from the history files; a number no timeline has is a gap nothing replays past.
  const present = new Set(listing.segments.filter((s) => s.timeline <= head.timeline).map((s) => s.segno));
  // The segment holding the last archived byte: an archivedLsn on a segment boundary needs nothing of the next one.
  const archived = parseLsn(head.archivedLsn);
  const headSegment = segmentOf(archived > 0n ? archived - 1n : 0n, size);
  const reachable = (backup: PhysicalBackupInfo): boolean => {
    if (backup.systemIdentifier !== head.systemIdentifier || backup.walSegmentSize !== size) return false;
    for (let segno = segmentOf(parseLsn(backup.startLsn), size); segno <= headSegment; segno++) {
      if (!present.has(segno)) return false;
    }
    return true;
  };
  const candidates = backups
    .filter((b) => reachable(b.physical))
    .sort((a, b) => Date.parse(a.physical.endTime) - Date.parse(b.physical.endTime));
  const oldest = candidates[0];
  if (!oldest) return undefined;
  return {
    earliest: { time: oldest.physical.endTime, lsn: oldest.physical.endLsn, backupId: oldest.backupId },
    latest: { time: head.coveredUntil, lsn: head.archivedLsn },
  };
}
