import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { ApiObject } from "cdk8s";
import { canonicalJson } from "../../src/compiler/canonical-json.js";
import { buildApp } from "../../src/compiler/cdk8s-chart.js";
import { compileManifests } from "../../src/compiler/compile.js";
import { loadPlans } from "../../src/plan/load.js";
import { mergePlans } from "../../src/plan/merge.js";
import type { BackupPlan } from "../../src/plan/types.js";
import { parseCnvrgApps } from "../../src/scanner/read-manifests.js";
import { scan } from "../../src/scanner/scan.js";

/** Every CnvrgApp fixture (all storage types, encryption-free and not) and the example plans. */
const fixturePlans = (): BackupPlan[] => {
  const apps = ["fixtures/cnvrgapps", "fixtures/cnvrgapps-storage"].flatMap((dir) =>
    readdirSync(dir)
      .filter((f) => f.endsWith(".yaml"))
      .flatMap((f) => parseCnvrgApps(readFileSync(`${dir}/${f}`, "utf8"), f)),
  );
  return scan(apps).plans;
};

describe("capsule plan builds what cdk8s synthesizes", () => {
  test("GIVEN every fixture and the example plans WHEN compiled without cdk8s and synthesized by cdk8s THEN the objects are the same, key order included", async () => {
    const plans = [...fixturePlans(), ...mergePlans([], await loadPlans("plans"))];
    const compiled = compileManifests(plans);
    const synthesized = buildApp(plans)
      .charts.flatMap((chart) => chart.node.children)
      .filter((child) => ApiObject.isApiObject(child))
      .map((child) => child.toJson() as unknown);
    assert.ok(compiled.length >= 10, `only ${compiled.length} CronJobs compiled`);
    assert.equal(JSON.stringify(compiled), JSON.stringify(synthesized));
  });
});

describe("canonical JSON", () => {
  /** What canonicalJson promises, written the slow, obvious way. */
  const reference = (value: unknown): string =>
    JSON.stringify(value, (_key, v: unknown) =>
      v !== null && typeof v === "object" && !Array.isArray(v)
        ? Object.fromEntries(
            Object.keys(v)
              .sort()
              .map((k) => [k, (v as Record<string, unknown>)[k]]),
          )
        : v,
    ) ?? "null";

  test("GIVEN strings needing escapes, unicode, lone surrogates, numbers, nesting and undefined WHEN written THEN the text is JSON.stringify's with keys sorted", () => {
    const values: unknown[] = [
      "plain",
      'quote " and \\ backslash',
      "control \u0000\u0001\n\t\u001f and DEL \u007f",
      "unicode é 漢字 😀 \u2028 \u2029",
      "lone \ud800 surrogate \udfff",
      { b: 1, a: [1, "x", null, undefined, { d: undefined, c: -0.5e-7 }], 'k"ey': true, "": false },
      [undefined, NaN, Infinity, { z: { y: { x: [] } }, e: {} }],
      null,
      42,
    ];
    for (const value of values) assert.equal(canonicalJson(value), reference(value), JSON.stringify(value));
  });
});
