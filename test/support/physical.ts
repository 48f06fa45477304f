/**
 * Physical base backups and streamed WAL written through capsule's own storage, without a PostgreSQL server: a
 * statefile begun as `kind: "physical"` and committed with its place in the WAL, and WAL segments of synthetic bytes
 * stored with `WalArchive.putSegment`. For retention and integrity tests, which read only what the bucket holds.
 */
import { Readable } from "node:stream";
import type { BackupStore } from "../../src/storage/backup-store.js";
import type { WalArchive } from "../../src/storage/wal-archive.js";
import { formatLsn, type PhysicalBackupInfo, segmentStart, type WalHead } from "../../src/domain/wal.js";
import type { Statefile } from "../../src/domain/statefile.js";

/** PostgreSQL's smallest segment size: synthetic WAL stays small. */
export const SEGMENT_SIZE = 1024 * 1024;
export const SYSTEM_ID = "7400000000000000001";

/** An LSN `offset` bytes into segment `segno`. */
export function lsnIn(segno: number, offset = 0x28): string {
  return formatLsn(segmentStart(segno, SEGMENT_SIZE) + BigInt(offset));
}

/** Whole segments `from`..`to` of `timeline`, each filled with bytes that differ per segment. */
export async function putSegments(
  archive: WalArchive,
  timeline: number,
  from: number,
  to: number,
): Promise<void> {
  for (let segno = from; segno <= to; segno++) {
    const bytes = Buffer.alloc(SEGMENT_SIZE, (segno * 7 + timeline) & 0xff);
    bytes.writeUInt32BE(segno, 0);
    await archive.putSegment({ timeline, segno, segmentSize: SEGMENT_SIZE, bytes, partial: false });
  }
}

/** The partial segment in progress: its first `bytes` bytes. */
export async function putPartial(
  archive: WalArchive,
  timeline: number,
  segno: number,
  bytes = 4096,
): Promise<void> {
  const data = Buffer.alloc(bytes, 0x5a);
  await archive.putSegment({ timeline, segno, segmentSize: SEGMENT_SIZE, bytes: data, partial: true });
}

/** A history file as PostgreSQL writes it: `timeline` branched from `parents` at their switchpoints. */
export async function putHistory(
  archive: WalArchive,
  timeline: number,
  parents: ReadonlyArray<{ timeline: number; switchpoint: string }>,
): Promise<void> {
  const text = parents
    .map((p) => `${p.timeline}\t${p.switchpoint}\tno recovery target specified\n`)
    .join("\n");
  await archive.putHistory(timeline, Buffer.from(text));
}

/** The head the streamer writes: WAL archived up to `archivedLsn` on `timeline`. */
export async function writeHead(
  archive: WalArchive,
  timeline: number,
  archivedLsn: string,
  systemIdentifier = SYSTEM_ID,
): Promise<WalHead> {
  const at = new Date().toISOString();
  const head: WalHead = {
    version: 1,
    systemIdentifier,
    timeline,
    segmentSize: SEGMENT_SIZE,
    slot: "capsule_test",
    archivedLsn,
    archivedAt: at,
    coveredUntil: at,
    serverLsn: archivedLsn,
    serverLsnAt: at,
    updatedAt: at,
  };
  await archive.writeHead(head);
  return head;
}

/**
 * A succeeded physical base backup of `target`, started at `startSegno` on `timeline`: begun as physical, a small
 * artifact uploaded, committed with its place in the WAL.
 */
export async function physicalBackup(
  store: BackupStore,
  options: {
    cluster: string;
    target: string;
    timeline?: number;
    startSegno: number;
    endSegno?: number;
    systemIdentifier?: string;
  },
): Promise<Statefile> {
  const run = await store.begin({
    cluster: options.cluster,
    target: options.target,
    engine: "postgresql",
    kind: "physical",
    trigger: { type: "manual" },
    source: { host: "postgres", port: 5432 },
    tool: { capsule: "test", pg_basebackup: "15" },
  });
  const uploaded = await run.uploadArtifact(
    "base.tar.zst",
    Readable.from([Buffer.from("base backup bytes")]),
  );
  const physical: PhysicalBackupInfo = {
    systemIdentifier: options.systemIdentifier ?? SYSTEM_ID,
    timeline: options.timeline ?? 1,
    startLsn: lsnIn(options.startSegno),
    endLsn: lsnIn(options.endSegno ?? options.startSegno, 0x1000),
    endTime: new Date().toISOString(),
    walSegmentSize: SEGMENT_SIZE,
  };
  return run.commit({
    artifact: { name: "base.tar.zst", format: "pg_basebackup-tar", compression: "zstd", ...uploaded },
    physical,
  });
}

/** A physical base backup begun and left running (its heartbeat fresh: not abandoned). */
export async function runningPhysicalBackup(
  store: BackupStore,
  options: { cluster: string; target: string },
): Promise<string> {
  const run = await store.begin({
    cluster: options.cluster,
    target: options.target,
    engine: "postgresql",
    kind: "physical",
    trigger: { type: "manual" },
    source: { host: "postgres", port: 5432 },
    tool: { capsule: "test" },
  });
  return run.ref.backupId;
}

/** The kept base backups as `recoveryWindow` takes them. */
export function basesFrom(
  statefiles: readonly Statefile[],
): Array<{ backupId: string; physical: PhysicalBackupInfo }> {
  return statefiles.flatMap((s) => (s.physical ? [{ backupId: s.backupId, physical: s.physical }] : []));
}
