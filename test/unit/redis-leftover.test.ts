import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  decodeMark,
  encodeMark,
  recoverCommand,
  type RestoreMark,
} from "../../src/engines/redis/leftover.js";

const mark: RestoreMark = {
  replid: "a".repeat(40),
  listener: { host: "10.0.0.7", port: 41234 },
  master: { host: "redis-primary", port: 6379 },
  masteruser: "replicator",
  tokenSet: true,
};

describe("the mark a Redis restore leaves in masteruser", () => {
  test("GIVEN a mark WHEN encoded THEN it is one capsule-restore: token without spaces that decodes to the same settings", () => {
    const value = encodeMark(mark);
    assert.match(value, /^capsule-restore:[A-Za-z0-9_-]+$/);
    assert.deepEqual(decodeMark(value), mark);
  });

  for (const [name, value] of [
    ["an operator's own masteruser", "replicator"],
    ["no masteruser", ""],
    ["a prefix with garbage", "capsule-restore:%%%"],
    [
      "a prefix with JSON missing fields",
      `capsule-restore:${Buffer.from('{"replid":"x"}').toString("base64url")}`,
    ],
    ["nothing at all", undefined],
  ] as const) {
    test(`GIVEN ${name} WHEN decoded THEN it is not a mark`, () => {
      assert.equal(decodeMark(value), undefined);
    });
  }

  test("GIVEN a connection with a user and TLS WHEN the recover command is built THEN it names them and never a password", () => {
    assert.equal(
      recoverCommand({
        host: "redis",
        port: 6380,
        user: "ops",
        password: "s3cret-pw",
        tls: { insecure: false },
      }),
      "capsule redis --recover --host redis --port 6380 --user ops --tls",
    );
  });
});
