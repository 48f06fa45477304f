import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseLsn } from "../../src/domain/wal.js";
import {
  dateToPgTimestamp,
  defaultSlotName,
  encodeStandbyStatus,
  isSlotName,
  parseSegmentSize,
  parseServerCopyMessage,
  pgTimestampToDate,
} from "../../src/engines/postgres/replication-messages.js";
import { walStreamSettings } from "../../src/engines/postgres/stream-wal.js";

/** An XLogData message as a walsender frames it. */
function xlogData(start: bigint, walEnd: bigint, at: Date, data: Buffer): Buffer {
  const header = Buffer.alloc(25);
  header[0] = 0x77;
  header.writeBigUInt64BE(start, 1);
  header.writeBigUInt64BE(walEnd, 9);
  header.writeBigInt64BE(dateToPgTimestamp(at), 17);
  return Buffer.concat([header, data]);
}

describe("replication messages", () => {
  test("GIVEN an XLogData frame THEN its start, WAL end, send time and payload are read", () => {
    const at = new Date("2026-03-01T12:00:00.123Z");
    const message = parseServerCopyMessage(
      xlogData(parseLsn("16/B374D848"), parseLsn("16/B3750000"), at, Buffer.from("wal bytes")),
    );
    assert.equal(message.kind, "wal");
    if (message.kind !== "wal") return;
    assert.equal(message.start, parseLsn("16/B374D848"));
    assert.equal(message.walEnd, parseLsn("16/B3750000"));
    assert.equal(message.sentAt.toISOString(), at.toISOString());
    assert.equal(message.data.toString(), "wal bytes");
  });

  test("GIVEN a keepalive frame THEN its WAL end and reply flag are read", () => {
    const frame = Buffer.alloc(18);
    frame[0] = 0x6b;
    frame.writeBigUInt64BE(parseLsn("0/3000148"), 1);
    frame.writeBigInt64BE(dateToPgTimestamp(new Date("2026-03-01T00:00:00Z")), 9);
    for (const flag of [0, 1]) {
      frame[17] = flag;
      const message = parseServerCopyMessage(frame);
      assert.deepEqual(message, {
        kind: "keepalive",
        walEnd: parseLsn("0/3000148"),
        sentAt: new Date("2026-03-01T00:00:00Z"),
        replyRequested: flag === 1,
      });
    }
  });

  test("GIVEN an unknown or truncated frame THEN it is a DatabaseError naming its type", () => {
    assert.throws(() => parseServerCopyMessage(Buffer.from([0x71, 1, 2])), /type 0x71, 3 bytes/);
    assert.throws(() => parseServerCopyMessage(Buffer.from([0x77, 0, 0])), /type 0x77/);
  });

  test("GIVEN a standby status THEN it is framed as 'r' with three LSNs, the time and the reply flag", () => {
    const now = new Date("2026-03-01T12:00:00Z");
    const frame = encodeStandbyStatus({
      written: parseLsn("1/10"),
      flushed: parseLsn("1/8"),
      applied: 0n,
      now,
      replyRequested: true,
    });
    assert.equal(frame.length, 34);
    assert.equal(frame[0], 0x72);
    assert.equal(frame.readBigUInt64BE(1), parseLsn("1/10"));
    assert.equal(frame.readBigUInt64BE(9), parseLsn("1/8"));
    assert.equal(frame.readBigUInt64BE(17), 0n);
    assert.equal(pgTimestampToDate(frame.readBigInt64BE(25)).toISOString(), now.toISOString());
    assert.equal(frame[33], 1);
  });

  test("GIVEN PostgreSQL's epoch THEN timestamps convert both ways", () => {
    assert.equal(dateToPgTimestamp(new Date("2000-01-01T00:00:00Z")), 0n);
    assert.equal(pgTimestampToDate(1_000_000n).toISOString(), "2000-01-01T00:00:01.000Z");
  });

  test("GIVEN SHOW wal_segment_size answers THEN sizes are read and non-sizes refused", () => {
    assert.equal(parseSegmentSize("16MB"), 16 * 1024 * 1024);
    assert.equal(parseSegmentSize("1GB"), 1024 ** 3);
    assert.equal(parseSegmentSize("1024kB"), 1024 * 1024);
    for (const bad of ["15MB", "512kB", "2GB", "lots"])
      assert.throws(() => parseSegmentSize(bad), /wal_segment_size/);
  });
});

describe("replication slot names", () => {
  const cases: Array<[string, string]> = [
    ["shop", "capsule_shop"],
    ["Shop-EU.1", "capsule_shop_eu_1"],
    ["a".repeat(80), `capsule_${"a".repeat(55)}`],
  ];
  for (const [target, slot] of cases) {
    test(`GIVEN target ${target.slice(0, 12)} THEN the default slot is ${slot.slice(0, 20)}… and valid`, () => {
      assert.equal(defaultSlotName(target), slot);
      assert.ok(isSlotName(slot));
    });
  }

  test("GIVEN names PostgreSQL refuses THEN they are not slot names", () => {
    for (const bad of ["", "Upper", "with-dash", "with space", "a".repeat(64)])
      assert.equal(isSlotName(bad), false, bad);
  });

  test("GIVEN stream fields THEN the slot and interval default, parse, and bad values name their field", () => {
    assert.deepEqual(walStreamSettings({}, "shop"), { slot: "capsule_shop", uploadIntervalMs: 10_000 });
    assert.deepEqual(walStreamSettings({ slot: "mine", walUploadInterval: "500ms" }, "shop"), {
      slot: "mine",
      uploadIntervalMs: 500,
    });
    assert.equal(walStreamSettings({ walUploadInterval: "2m" }, "x").uploadIntervalMs, 120_000);
    assert.equal(walStreamSettings({ walUploadInterval: "3" }, "x").uploadIntervalMs, 3_000);
    assert.throws(
      () => walStreamSettings({ slot: "Bad" }, "x"),
      (e: Error & { field?: string }) => e.field === "slot",
    );
    for (const bad of ["10 seconds", "0s", "50ms", "2h"]) {
      assert.throws(
        () => walStreamSettings({ walUploadInterval: bad }, "x"),
        (e: Error & { field?: string }) => e.field === "walUploadInterval",
        bad,
      );
    }
  });
});
