import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  DEFAULT_WAL_SEGMENT_SIZE,
  formatLsn,
  parseLsn,
  parseWalFileName,
  recoveryWindow,
  walFileName,
  type WalHead,
} from "../../src/domain/wal.js";
import { FileObjectStore } from "../../src/storage/file-object-store.js";
import { layout } from "../../src/storage/layout.js";
import { WalArchive } from "../../src/storage/wal-archive.js";

const SIZE = DEFAULT_WAL_SEGMENT_SIZE;

describe("WAL names and positions", () => {
  test("GIVEN LSNs and WAL file names WHEN parsed and formatted THEN they round-trip as PostgreSQL writes them", () => {
    assert.equal(parseLsn("16/B374D848"), (0x16n << 32n) | 0xb374d848n);
    assert.equal(formatLsn(parseLsn("0/16B3748")), "0/16B3748");
    assert.throws(() => parseLsn("16-B3"), /not an LSN/);
    // Segment 0x1_0000_0003 of 16 MiB is log 1, segment 3 (256 segments per 4 GiB id).
    assert.equal(walFileName(1, 256 + 3, SIZE), "000000010000000100000003");
    assert.deepEqual(parseWalFileName("000000020000000100000003", SIZE), { timeline: 2, segno: 259 });
    assert.equal(parseWalFileName("0000000200000001000001FF", SIZE), undefined, "beyond 256 segments per id");
    assert.equal(parseWalFileName("00000002.history", SIZE), undefined);
  });
});

describe("WAL archive on a file:// store", () => {
  const dir = mkdtempSync(join(tmpdir(), "capsule-wal-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const store = new FileObjectStore(dir);
  const archive = new WalArchive(store, "capsule", "c1", "app");
  const head: WalHead = {
    version: 1,
    systemIdentifier: "7312345678901234567",
    timeline: 1,
    segmentSize: SIZE,
    slot: "capsule_app",
    archivedLsn: formatLsn(3n * BigInt(SIZE) + 100n),
    archivedAt: "2026-12-05T10:00:10.000Z",
    coveredUntil: "2026-12-05T10:00:09.000Z",
    serverLsn: formatLsn(3n * BigInt(SIZE) + 100n),
    serverLsnAt: "2026-12-05T10:00:10.000Z",
    updatedAt: "2026-12-05T10:00:10.000Z",
  };

  test("GIVEN complete and partial segments WHEN listed and fetched THEN each decodes to a whole segment, and the complete one replaces its partial", async () => {
    const full = Buffer.alloc(SIZE, 7);
    for (const segno of [1, 2])
      await archive.putSegment({ timeline: 1, segno, segmentSize: SIZE, bytes: full, partial: false });
    await archive.putSegment({
      timeline: 1,
      segno: 3,
      segmentSize: SIZE,
      bytes: Buffer.from("abc"),
      partial: true,
    });
    await archive.putHistory(2, Buffer.from("1\t0/3000000\tno recovery target specified\n"));
    await archive.writeHead(head);

    const listing = await archive.listing();
    assert.deepEqual(
      listing.segments.map((s) => [s.name, s.partial]),
      [
        ["000000010000000000000001", false],
        ["000000010000000000000002", false],
        ["000000010000000000000003", true],
      ],
    );
    assert.deepEqual(listing.historyTimelines, [2]);
    assert.deepEqual(listing.head, head);
    const partial = await archive.fetchSegment(listing.segments[2]!, SIZE);
    assert.equal(partial.length, SIZE);
    assert.equal(partial.subarray(0, 4).toString("latin1"), "abc\0");
    assert.ok((await archive.fetchSegment(listing.segments[0]!, SIZE)).equals(full));
    assert.equal((await archive.fetchHistory(2))?.toString().split("\t")[1], "0/3000000");
    assert.equal(await archive.fetchHistory(3), undefined);

    await archive.putSegment({ timeline: 1, segno: 3, segmentSize: SIZE, bytes: full, partial: false });
    assert.deepEqual(
      (await archive.listing()).segments.map((s) => s.partial),
      [false, false, false],
      "the complete segment removed its partial",
    );
  });

  test("GIVEN a damaged segment object WHEN fetched THEN it is refused, never handed to PostgreSQL", async () => {
    const key = layout.walSegmentKey("capsule", "c1", "app", "000000010000000000000002", {
      partial: false,
      encrypted: false,
    });
    const stored = Buffer.from(await (await import("node:fs/promises")).readFile(join(dir, key)));
    stored[stored.length - 2]! ^= 0xff;
    await store.put(key, stored);
    const segment = (await archive.listing()).segments.find((s) => s.segno === 2)!;
    await assert.rejects(archive.fetchSegment(segment, SIZE), /does not decode|holds/);
  });

  test("GIVEN base backups and a WAL listing WHEN the recovery window is computed THEN it starts at the oldest backup whose WAL reaches the head without a gap", async () => {
    const listing = await archive.listing();
    const backup = (id: string, startSeg: number, endTime: string) => ({
      backupId: id,
      physical: {
        systemIdentifier: head.systemIdentifier,
        timeline: 1,
        startLsn: formatLsn(BigInt(startSeg) * BigInt(SIZE) + 40n),
        endLsn: formatLsn(BigInt(startSeg) * BigInt(SIZE) + 400n),
        endTime,
        walSegmentSize: SIZE,
      },
    });
    // Segment 0 is not in the bucket: a backup starting there has a gap; one starting in segment 1 does not.
    const window = recoveryWindow(
      [backup("old", 0, "2026-12-05T09:00:00.000Z"), backup("mid", 1, "2026-12-05T09:30:00.000Z")],
      listing,
    );
    assert.equal(window?.earliest.backupId, "mid");
    assert.equal(window?.latest.time, head.coveredUntil);
    assert.equal(recoveryWindow([backup("old", 0, "2026-12-05T09:00:00.000Z")], listing), undefined);
    const other = { ...backup("x", 1, "2026-12-05T09:30:00.000Z") };
    assert.equal(
      recoveryWindow([{ ...other, physical: { ...other.physical, systemIdentifier: "1" } }], listing),
      undefined,
      "another cluster's backup never connects",
    );
  });
});
