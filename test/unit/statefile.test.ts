import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseStatefile, serializeStatefile } from "../../src/storage/statefile.js";
import { deriveState } from "../../src/domain/statefile.js";
import { statefile } from "../support/entries.js";

describe("statefile v1", () => {
  test("GIVEN a valid statefile WHEN serialized and parsed THEN it round-trips", () => {
    const s = statefile();
    assert.deepEqual(parseStatefile(serializeStatefile(s), "k"), s);
  });

  const invalid: Array<[string, (s: Record<string, unknown>) => void, RegExp]> = [
    [
      "a wrong version",
      (s) => (s["statefileVersion"] = 2),
      /k: \/statefileVersion must be equal to constant/,
    ],
    [
      "an unknown engine",
      (s) => (s["engine"] = "mysql"),
      /\/engine must be equal to one of the allowed values \(got "mysql"\)/,
    ],
    ["a succeeded run without artifact", (s) => delete s["artifact"], /\/artifact is required/],
    [
      "a bad digest",
      (s) => ((s["artifact"] as Record<string, unknown>)["sha256"] = "xyz"),
      /\/artifact\/sha256 must match pattern/,
    ],
    ["a missing backupId", (s) => delete s["backupId"], /\/backupId is required/],
    [
      "an age artifact without its plaintext digest",
      (s) =>
        ((s["artifact"] as Record<string, unknown>)["encryption"] = {
          type: "age",
          recipients: ["age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq"],
          plaintextBytes: 1,
        }),
      /\/artifact\/encryption\/plaintextSha256 is required/,
    ],
    [
      "an age artifact naming a secret key as its recipient",
      (s) =>
        ((s["artifact"] as Record<string, unknown>)["encryption"] = {
          type: "age",
          recipients: ["AGE-SECRET-KEY-1XYZ"],
          plaintextSha256: "0".repeat(64),
          plaintextBytes: 1,
        }),
      /\/artifact\/encryption\/recipients\/0 must match pattern/,
    ],
  ];
  for (const [what, mutate, message] of invalid) {
    test(`GIVEN ${what} WHEN parsed THEN it is rejected naming the field`, () => {
      const s = statefile() as unknown as Record<string, unknown>;
      mutate(s);
      assert.throws(() => parseStatefile(JSON.stringify(s), "k"), message);
    });
  }

  test("GIVEN an encrypted artifact WHEN serialized and parsed THEN its recipients and plaintext digest round-trip; a v1 statefile from before encryption still parses", () => {
    const s = statefile();
    s.artifact!.encryption = {
      type: "age",
      recipients: ["age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq"],
      plaintextSha256: "a".repeat(64),
      plaintextBytes: 42,
    };
    assert.deepEqual(parseStatefile(serializeStatefile(s), "k"), s);
    assert.deepEqual(parseStatefile(serializeStatefile(statefile()), "k").artifact?.encryption, {
      type: "none",
    });
  });

  test("GIVEN bytes that are not JSON WHEN parsed THEN the error names the key", () => {
    assert.throws(
      () => parseStatefile("{nope", "capsule/x/statefile.json"),
      /capsule\/x\/statefile.json: not valid JSON/,
    );
  });

  test("GIVEN a running statefile WHEN its heartbeat is stale THEN it reads as abandoned", () => {
    const s = statefile({ status: "running", at: "2026-11-25T12:00:00.000Z" });
    assert.equal(deriveState(s, new Date("2026-11-25T12:05:00Z"), 600_000), "running");
    assert.equal(deriveState(s, new Date("2026-11-25T12:10:01Z"), 600_000), "abandoned");
    assert.equal(deriveState(statefile({ status: "failed" }), new Date("2030-01-01T00:00:00Z")), "failed");
  });
});
