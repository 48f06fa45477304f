/**
 * The RDB scanner on hand-built RDBs: every value type and opcode it must step over, fed at every split point so
 * no chunk boundary can confuse it, and each way a payload can be bad.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Crc64 } from "../../src/engines/redis/crc64.js";
import { RdbScanner, type RdbSummary } from "../../src/engines/redis/rdb.js";

/** RDB length encoding. */
function len(n: number): Buffer {
  if (n < 64) return Buffer.from([n]);
  if (n < 16384) return Buffer.from([0x40 | (n >> 8), n & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = 0x80;
  b.writeUInt32BE(n, 1);
  return b;
}
const str = (s: string | Buffer) => {
  const bytes = Buffer.from(s);
  return Buffer.concat([len(bytes.length), bytes]);
};
const int8 = (v: number) => Buffer.from([0xc0, v & 0xff]);
const int32 = (v: number) => {
  const b = Buffer.alloc(5);
  b[0] = 0xc2;
  b.writeInt32LE(v, 1);
  return b;
};
/** An LZF-encoded string header and its (opaque, here fake) compressed bytes. */
const lzf = (compressed: number, uncompressed: number) =>
  Buffer.concat([Buffer.from([0xc3]), len(compressed), len(uncompressed), Buffer.alloc(compressed, 0x61)]);
const u64 = () => Buffer.alloc(8, 1);
const key = (type: number, name: string, ...value: Buffer[]) =>
  Buffer.concat([Buffer.from([type]), str(name), ...value]);

function rdb(version: string, ...body: Buffer[]): Buffer {
  const data = Buffer.concat([Buffer.from(`REDIS${version}`), ...body, Buffer.from([0xff])]);
  return Buffer.concat([data, new Crc64().update(data).digestBytes()]);
}

function scan(bytes: Buffer, step = bytes.length): RdbSummary {
  const scanner = new RdbScanner();
  for (let i = 0; i < bytes.length; i += step) scanner.update(bytes.subarray(i, i + step));
  return scanner.finish();
}

const stream3 = Buffer.concat([
  len(1),
  str(Buffer.alloc(16)),
  str("listpack-bytes"),
  len(3), // length
  len(5),
  len(1), // last id
  len(1),
  len(1),
  len(0),
  len(0),
  len(3), // first id, max deleted, entries added
  len(1), // groups
  str("group"),
  len(5),
  len(1),
  len(2), // entries read
  len(1), // global PEL
  Buffer.alloc(16),
  u64(),
  len(1),
  len(1), // consumers
  str("consumer"),
  u64(),
  u64(), // seen, active
  len(1),
  Buffer.alloc(16),
]);

const EVERYTHING = rdb(
  "0012",
  Buffer.from([0xfa]),
  str("redis-ver"),
  str("7.4.0"),
  Buffer.from([0xfa]),
  str("ctime"),
  int32(1700000000),
  Buffer.from([0xf5]),
  str("#!lua name=lib\nredis.register_function('f', function() return 1 end)"),
  Buffer.from([0xf7]),
  len(12345),
  len(2),
  len(2),
  len(2),
  len(7),
  len(5),
  str("module aux"),
  len(0),
  Buffer.from([0xfe, 0x00, 0xfb]),
  len(14),
  len(2),
  key(0, "string", str("value")),
  key(0, "int", int8(-5)),
  key(0, "compressed", lzf(30, 5000)),
  Buffer.from([0xfc]),
  u64(),
  key(0, "with-ttl", str("v")),
  Buffer.from([0xf8]),
  len(100),
  Buffer.from([0xf9, 0x05]),
  key(1, "list", len(2), str("a"), str("b")),
  key(2, "set", len(1), str("m")),
  key(3, "zset-old", len(2), str("a"), Buffer.from([3]), Buffer.from("1.5"), str("b"), Buffer.from([254])),
  key(4, "hash", len(1), str("f"), str("v")),
  key(5, "zset", len(1), str("a"), u64()),
  key(
    7,
    "module",
    len(999),
    len(2),
    len(42),
    len(3),
    Buffer.alloc(4),
    len(4),
    u64(),
    len(5),
    str("x"),
    len(0),
  ),
  key(14, "quicklist", len(2), str("zl1"), str("zl2")),
  key(16, "hash-listpack", str("lp")),
  key(18, "quicklist2", len(2), len(2), str("lp"), len(1), str("plain")),
  key(20, "set-listpack", str("lp")),
  key(21, "stream", stream3),
  Buffer.from([0xfc]),
  u64(),
  key(24, "hash-field-ttl", u64(), len(2), len(0), str("f1"), str("v1"), len(7), str("f2"), str("v2")),
  key(25, "hash-lp-ttl", u64(), str("lp")),
  Buffer.from([0xfe]),
  len(15),
  Buffer.from([0xf4]),
  len(100),
  len(1),
  len(0),
  key(0, "in-db15", str(Buffer.alloc(20_000, 7))),
);

describe("RdbScanner", () => {
  test("GIVEN an RDB with every value type and opcode THEN it counts keys and TTLs per database and verifies the checksum, whatever the chunking", () => {
    for (const step of [1, 2, 3, 5, 8, 13, 64, 4096, EVERYTHING.length]) {
      const summary = scan(EVERYTHING, step);
      assert.deepEqual(
        summary.databases,
        { db0: { keys: 17, expires: 2 }, db15: { keys: 1, expires: 0 } },
        `step ${step}`,
      );
      assert.equal(summary.version, 12);
      assert.equal(summary.checksum, "verified");
      assert.equal(summary.sizeBytes, EVERYTHING.length);
      assert.deepEqual(summary.aux, { "redis-ver": "7.4.0", ctime: "1700000000" });
    }
  });

  test("GIVEN a flipped byte anywhere before the trailer THEN the checksum fails", () => {
    for (const at of [9, 100, Math.floor(EVERYTHING.length / 2), EVERYTHING.length - 10]) {
      const bad = Buffer.from(EVERYTHING);
      bad[at] = bad[at]! ^ 0x10;
      assert.throws(
        () => scan(bad, 1000),
        (e: Error) => /CRC-64 does not match|truncated|unexpected bytes/.test(e.message),
        `byte ${at}`,
      );
    }
  });

  const bad: Array<{ name: string; bytes: () => Buffer; message: RegExp }> = [
    {
      name: "another magic",
      bytes: () => Buffer.from("RADIS0010xxxxxxxxxx"),
      message: /not an RDB: it starts with "RADIS0010"/,
    },
    { name: "a non-numeric version", bytes: () => Buffer.from("REDIS00a0xxxxxxxxxx"), message: /not an RDB/ },
    { name: "too few bytes", bytes: () => Buffer.from("REDIS"), message: /not an RDB: only 5 bytes/ },
    {
      name: "a cut-off body",
      bytes: () => EVERYTHING.subarray(0, 200),
      message: /truncated: it ends after 200 bytes/,
    },
    {
      name: "a cut-off trailer",
      bytes: () => EVERYTHING.subarray(0, EVERYTHING.length - 3),
      message: /truncated inside its checksum/,
    },
    {
      name: "bytes after the end",
      bytes: () => Buffer.concat([EVERYTHING, Buffer.from("junk")]),
      message: /4 unexpected bytes after its end marker/,
    },
  ];
  for (const c of bad) {
    test(`GIVEN ${c.name} THEN the scan fails with a clear message`, () => {
      assert.throws(() => scan(c.bytes(), 7), c.message);
    });
  }

  test("GIVEN a zero trailer (rdbchecksum no) THEN it is accepted and reported as disabled", () => {
    const body = EVERYTHING.subarray(0, EVERYTHING.length - 8);
    assert.equal(scan(Buffer.concat([body, Buffer.alloc(8)])).checksum, "disabled");
  });

  test("GIVEN a value type capsule does not know THEN key counts are unavailable but the checksum still decides", () => {
    const unknown = rdb("0012", Buffer.from([0xfe, 0x00]), key(0, "a", str("v")), key(99, "b", str("v")));
    const summary = scan(unknown, 3);
    assert.equal(summary.databases, undefined);
    assert.match(summary.unparsed ?? "", /value type 99 at byte \d+ is not one this capsule reads/);
    assert.equal(summary.checksum, "verified");
    const corrupt = Buffer.from(unknown);
    corrupt[corrupt.length - 12] = corrupt[corrupt.length - 12]! ^ 1;
    assert.throws(() => scan(corrupt), /CRC-64 does not match/);
  });
});
