/**
 * `reportPieces`: what a command writes to stdout, in pieces (a listing of 100,000 backups is never one string). The
 * pieces must join to exactly the one-string rendering scripts already parse.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { report, reportPieces, type OutputFormat, type Report } from "../../src/commands/render.js";

const entry = (i: number) => ({
  backupId: `postgresql-20250101T000000Z-${String(i).padStart(6, "0")}`,
  state: i % 7 === 0 ? "corrupt" : "succeeded",
  problem: i % 7 === 0 ? 'line one\nline "two"\ttabbed ✓' : undefined,
  artifact: { sizeBytes: i * 1024, nested: { list: [1, [2, { three: 3 }], []], empty: {} } },
  restores: [],
});

describe("reportPieces", () => {
  const cases: Array<[string, OutputFormat, Report]> = [
    ["an empty JSON list", "json", { document: [] }],
    ["a JSON list of one", "json", { document: [entry(0)] }],
    [
      "a JSON list of 5,000 (many pieces)",
      "json",
      { document: Array.from({ length: 5000 }, (_, i) => entry(i)) },
    ],
    ["a JSON object", "json", { document: { error: { code: "X", message: "a\nb" } } }],
    ["a YAML list", "yaml", { document: [entry(1), entry(7)] }],
    ["a table", "table", { table: () => "a  b\n1  2" }],
    ["no document", "json", {}],
  ];
  for (const [label, format, result] of cases) {
    test(`GIVEN ${label} WHEN rendered in pieces THEN they join to the one-string rendering`, () => {
      const pieces = [...reportPieces(format, result)];
      assert.equal(pieces.join(""), report(format, result));
      if (format === "json" && result.document !== undefined) JSON.parse(pieces.join(""));
    });
  }

  test("GIVEN a JSON list of 5,000 WHEN rendered in pieces THEN no piece is much over 64 KiB", () => {
    const pieces = [...reportPieces("json", { document: Array.from({ length: 5000 }, (_, i) => entry(i)) })];
    assert.ok(pieces.length > 10, `${pieces.length} pieces`);
    assert.ok(Math.max(...pieces.map((p) => p.length)) < 70 * 1024);
  });
});
