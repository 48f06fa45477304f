import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { encodeCommand, RespError, RespReader, type RespValue } from "../../src/engines/redis/resp.js";
import { parseInfo, parseKeyspace, maxRdbVersionOf } from "../../src/engines/redis/info.js";
import { compareKeyspaces } from "../../src/engines/redis/fingerprint.js";

function readAll(bytes: Buffer, step: number): RespValue[] {
  const reader = new RespReader();
  const values: RespValue[] = [];
  for (let i = 0; i < bytes.length; i += step) {
    reader.push(bytes.subarray(i, i + step));
    for (let v = reader.next(); v !== undefined; v = reader.next()) values.push(v);
  }
  return values;
}

describe("RESP", () => {
  test("GIVEN binary arguments WHEN encoded THEN they are length-prefixed bulk strings", () => {
    assert.equal(
      encodeCommand(["SET", Buffer.from([0, 0x0d, 0x0a]), "v"]).toString("latin1"),
      "*3\r\n$3\r\nSET\r\n$3\r\n\0\r\n\r\n$1\r\nv\r\n",
    );
  });

  test("GIVEN every reply type split at every byte THEN each is parsed once, in order", () => {
    const wire = Buffer.from(
      "+OK\r\n-WRONGPASS invalid username-password pair\r\n:42\r\n$5\r\nhe\r\no\r\n$-1\r\n*2\r\n$1\r\na\r\n*1\r\n:1\r\n*-1\r\nPING now\r\n",
    );
    for (const step of [1, 2, 5, wire.length]) {
      const values = readAll(wire, step);
      assert.equal(values.length, 8, `step ${step}`);
      assert.equal(values[0], "OK");
      assert.ok(values[1] instanceof RespError && values[1].code === "WRONGPASS");
      assert.equal(values[2], 42);
      assert.deepEqual(values[3], Buffer.from("he\r\no"));
      assert.equal(values[4], null);
      assert.deepEqual(values[5], [Buffer.from("a"), [1]]);
      assert.equal(values[6], null);
      assert.deepEqual(values[7], ["PING", "now"], "an inline command");
    }
  });

  test("GIVEN bytes after a reply WHEN the rest is taken THEN it is exactly what was not parsed", () => {
    const reader = new RespReader();
    reader.push(Buffer.from("+OK\r\n$EOF:raw"));
    assert.equal(reader.next(), "OK");
    assert.equal(reader.next(), undefined);
    assert.equal(reader.takeRemainder().toString(), "$EOF:raw");
  });
});

describe("INFO", () => {
  test("GIVEN INFO keyspace text THEN keys and TTL counts per database are read", () => {
    const info = parseInfo(
      "# Keyspace\r\ndb0:keys=12,expires=3,avg_ttl=100\r\ndb7:keys=1,expires=0,avg_ttl=0,subexpiry=0\r\n",
    );
    assert.deepEqual(parseKeyspace(info), { db0: { keys: 12, expires: 3 }, db7: { keys: 1, expires: 0 } });
  });

  test("GIVEN two keyspaces THEN the differences name the database and both counts", () => {
    assert.deepEqual(
      compareKeyspaces(
        { db0: { keys: 3, expires: 1 }, db2: { keys: 1, expires: 0 } },
        { db0: { keys: 3, expires: 0 }, db5: { keys: 2, expires: 0 } },
      ),
      ["db0: 0 keys with a TTL, backup has 1", "db2: 0 keys, backup has 1", "db5: 2 keys, backup has 0"],
    );
  });

  const versions: Array<[string, number | undefined]> = [
    ["6.2.14", 9],
    ["7.0.15", 10],
    ["7.2.4", 11],
    ["7.4.1", 12],
    ["8.2.0", undefined],
  ];
  for (const [version, rdb] of versions) {
    test(`GIVEN Redis ${version} THEN it reads RDB versions up to ${rdb ?? "(unknown: assume nothing)"}`, () => {
      assert.equal(maxRdbVersionOf(version), rdb);
    });
  }
});
