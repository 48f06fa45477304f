import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { cronJobName, labelValue } from "../../src/compiler/names.js";

const DNS_1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

describe("CronJob names", () => {
  const cases: Array<[string, string, string]> = [
    ["cnvrg.cnvrg-app", "postgresql", "capsule-cnvrg-cnvrg-app-postgresql"],
    ["a.b", "redis", "capsule-a-b-redis"],
  ];
  for (const [cluster, target, expected] of cases) {
    test(`GIVEN ${cluster}/${target} WHEN named THEN it stays readable: ${expected}`, () => {
      assert.equal(cronJobName(cluster, target), expected);
    });
  }

  test("GIVEN a 54-character name WHEN named THEN it is cut and suffixed with a hash, ≤ 52", () => {
    const name = cronJobName("ns.app-with-a-rather-long-name", "postgresql-main");
    assert.equal(name.length <= 52, true);
    assert.match(name, /^capsule-ns-app-with-a-rather-long-name-po-[0-9a-f]{10}$/);
  });

  test("GIVEN 10,000 distinct long targets WHEN named THEN no two collide and all are ≤ 52 and DNS-1123", () => {
    const names = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      // Long and alike: only the tail differs, so the readable head is identical for all of them.
      const cluster = `cnvrg-production-namespace-${i % 7}.cnvrg-application-with-a-long-name`;
      const name = cronJobName(cluster, `target-number-${i}`);
      assert.ok(name.length <= 52, name);
      assert.match(name, DNS_1123_LABEL);
      names.add(name);
    }
    assert.equal(names.size, 10_000);
  });

  test("GIVEN a cut that ends on a dash WHEN named THEN the dash is dropped before the hash", () => {
    for (let cut = 30; cut < 60; cut++) {
      const name = cronJobName(`${"a".repeat(cut)}.-b`.replace(".-", ".b-"), "x-y-z-w-v-u-t");
      assert.match(name, DNS_1123_LABEL);
      assert.doesNotMatch(name, /--[0-9a-f]{10}$/);
    }
  });

  test("GIVEN the same target WHEN named twice THEN the name is the same", () => {
    const cluster = "x".repeat(100);
    assert.equal(cronJobName(cluster, "pg"), cronJobName(cluster, "pg"));
  });
});

describe("label values", () => {
  test("GIVEN a cluster id of ≤ 63 characters WHEN labelled THEN it is kept as is", () => {
    assert.equal(labelValue("cnvrg.cnvrg-app"), "cnvrg.cnvrg-app");
  });

  test("GIVEN 1,000 distinct 200-character cluster ids WHEN labelled THEN all are valid, ≤ 63 and distinct", () => {
    const values = new Set<string>();
    for (let i = 0; i < 1_000; i++) {
      const value = labelValue(`${"n".repeat(150)}.app-${i}`.padEnd(200, "z"));
      assert.ok(value.length <= 63 && LABEL_VALUE.test(value), value);
      values.add(value);
    }
    assert.equal(values.size, 1_000);
  });
});
