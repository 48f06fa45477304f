import assert from "node:assert/strict";
import { describe, test } from "node:test";
import yaml from "js-yaml";
import { dumpYaml, scalar } from "../../src/compiler/yaml.js";

describe("the manifest YAML emitter", () => {
  const tricky = [
    "",
    " ",
    " lead",
    "trail ",
    "yes",
    "No",
    "ON",
    "off",
    "y",
    "N",
    "true",
    "False",
    "null",
    "Null",
    "~",
    "1",
    "-1",
    "+1",
    "1.5",
    "1e3",
    "0x1F",
    "0o17",
    "1_000",
    ".inf",
    "-.inf",
    ".nan",
    "2026-01-01",
    "12:30",
    "a: b",
    "a:b",
    "#x",
    "a #b",
    "-",
    "- a",
    "--cluster",
    "?",
    "? a",
    "@x",
    "`x",
    "*x",
    "&x",
    "!x",
    "%x",
    "|",
    ">",
    "[a]",
    "{a}",
    "a,b",
    "'",
    '"',
    "it's",
    "line\nbreak",
    "tab\there",
    "bell\u0007",
    "ünïcödé",
    "emoji 🎉",
    "p@ss:w/rd$\"with'quotes",
    "\\",
    "a\\nb",
    "250m",
    "1Gi",
    "Etc/UTC",
    "capsule.cnvrg.io/spec-hash",
    "30 2 * * *",
    "*/5 * * * *",
    '{"json":true}',
  ];
  for (const value of tricky) {
    test(`GIVEN the string ${JSON.stringify(value)} WHEN written and read back THEN it is the same string`, () => {
      assert.deepEqual(yaml.load(dumpYaml({ key: value, [value || "empty"]: [value] })), {
        key: value,
        [value || "empty"]: [value],
      });
    });
  }

  const plainCases: Array<[string | number | boolean | null, string]> = [
    ["capsule", "capsule"],
    ["Etc/UTC", "Etc/UTC"],
    ["app.kubernetes.io/name", "app.kubernetes.io/name"],
    ["yes", "'yes'"],
    ["5432", "'5432'"],
    ["30 2 * * *", "'30 2 * * *'"],
    ["a\nb", '"a\\nb"'],
    [5432, "5432"],
    [false, "false"],
    [null, "null"],
  ];
  for (const [value, written] of plainCases) {
    test(`GIVEN ${JSON.stringify(value)} WHEN written as a scalar THEN it reads ${written}`, () => {
      assert.equal(scalar(value), written);
    });
  }

  test("GIVEN nested objects, arrays of objects, empty containers WHEN written THEN js-yaml reads back the same data", () => {
    const doc = {
      b: { z: 1, a: [{ y: { q: [1, [2, 3], []] }, x: "v" }, "s", [], {}], e: {} },
      a: [[{ k: "v" }]],
      c: [{ only: { deep: { er: true } } }],
    };
    assert.deepEqual(yaml.load(dumpYaml(doc)), doc);
  });

  test("GIVEN keys in any order WHEN written THEN the bytes are the same, keys sorted", () => {
    assert.equal(dumpYaml({ b: 1, a: { d: 2, c: 3 } }), "a:\n  c: 3\n  d: 2\nb: 1\n");
    assert.equal(dumpYaml({ a: { c: 3, d: 2 }, b: 1 }), dumpYaml({ b: 1, a: { d: 2, c: 3 } }));
  });

  test("GIVEN a non-finite number WHEN written THEN it throws rather than write something unreadable", () => {
    assert.throws(() => dumpYaml({ a: Infinity }), /cannot write Infinity/);
  });
});
