import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import yaml from "js-yaml";
import { formatSkipped } from "../../src/scanner/fields.js";
import { parseCnvrgApps } from "../../src/scanner/read-manifests.js";
import { scan } from "../../src/scanner/scan.js";
import type { BackupPlan } from "../../src/plan/types.js";

const FIXTURES = new URL("../../fixtures/cnvrgapps/", import.meta.url);
const fixture = (name: string) => parseCnvrgApps(readFileSync(new URL(name, FIXTURES), "utf8"), name);
const ALL = ["full.yaml", "pg-only-defaults.yaml", "backups-disabled.yaml", "broken-period.yaml"].flatMap(
  fixture,
);

/** A CnvrgApp with only PostgreSQL backed up; `dbs` is merged over it. */
function app(
  dbs: Record<string, unknown> = {},
  metadata: Record<string, unknown> = { name: "a", namespace: "ns" },
) {
  return {
    apiVersion: "mlops.cnvrg.io/v1",
    kind: "CnvrgApp",
    metadata,
    spec: { dbs: { pg: { enabled: true, backup: { enabled: true } }, ...dbs } },
  };
}

const planOf = (plans: BackupPlan[], cluster: string) => plans.find((p) => p.metadata.cluster === cluster);
const targetsOf = (plans: BackupPlan[], cluster: string) =>
  planOf(plans, cluster)?.spec.targets.map((t) => t.name);

describe("scan over the fixtures", () => {
  const { plans, skipped } = scan(ALL);

  test("GIVEN apps in four namespaces WHEN scanned THEN one plan per valid app, cluster id <namespace>.<name>", () => {
    assert.deepEqual(plans.map((p) => p.metadata.cluster).sort(), [
      "cnvrg-broken.broken",
      "cnvrg-sandbox.sandbox",
      "cnvrg-team-a.team-a",
      "cnvrg.cnvrg-app",
    ]);
  });

  const cases: Array<[string, string, string[]]> = [
    ["all three engines enabled and backed up", "cnvrg.cnvrg-app", ["postgresql", "redis", "elasticsearch"]],
    ["redis enabled but its backup not", "cnvrg-team-a.team-a", ["postgresql"]],
    ["databases enabled, backups disabled", "cnvrg-sandbox.sandbox", []],
    ["a broken period", "cnvrg-broken.broken", []],
  ];
  for (const [given, cluster, targets] of cases) {
    test(`GIVEN ${given} WHEN scanned THEN ${cluster} has targets [${targets.join(", ")}]`, () => {
      assert.deepEqual(targetsOf(plans, cluster), targets);
    });
  }

  test("GIVEN the full app WHEN scanned THEN rotation, port, service and Secrets come from the CnvrgApp", () => {
    const redis = planOf(plans, "cnvrg.cnvrg-app")?.spec.targets.find((t) => t.engine === "redis");
    assert.ok(redis);
    assert.equal(redis.retention.keepLast, 3);
    assert.deepEqual(redis.connection, { host: "redis", port: 6379 });
    assert.equal(redis.credentials.secretName, "redis-creds");
    assert.equal(redis.namespace, "cnvrg");
    assert.match(redis.schedule.cron, /^\d+ \d+-23\/6 \* \* \*$/);
  });

  test("GIVEN backup fields left out WHEN scanned THEN docs/design.md §3 defaults apply (5 kept, 24h, pg-creds, cp-object-storage)", () => {
    const plan = planOf(plans, "cnvrg-team-a.team-a");
    const pg = plan?.spec.targets[0];
    assert.ok(plan && pg);
    assert.equal(pg.retention.keepLast, 5);
    assert.match(pg.schedule.cron, /^\d+ \d+ \* \* \*$/);
    assert.equal(pg.connection.port, 5433, "the port comes from the CnvrgApp, never hard-coded");
    assert.equal(pg.credentials.secretName, "pg-creds");
    assert.equal(pg.credentials.keys.password, "POSTGRES_PASSWORD");
    assert.equal(plan.spec.storage.bucketSecretRef?.secretName, "cp-object-storage");
    assert.equal(plan.spec.storage.prefix, "capsule");
  });

  test("GIVEN a broken period and rotation WHEN scanned THEN each is reported naming app, field and value", () => {
    assert.deepEqual(
      skipped.map((s) => [s.app, s.target, s.field, s.value]),
      [
        ["cnvrg-broken/broken", "postgresql", "spec.dbs.pg.backup.rotation", -2],
        ["cnvrg-broken/broken", "postgresql", "spec.dbs.pg.backup.period", "every day"],
      ],
    );
    assert.equal(
      formatSkipped(skipped[1]!),
      'skipped target postgresql of CnvrgApp cnvrg-broken/broken: spec.dbs.pg.backup.period must be <number><s|m|h|d>, e.g. 24h, with a number from 1 to 999999 (got "every day")',
    );
  });

  test("GIVEN a Secret in the same file WHEN the file is read THEN only CnvrgApps are returned", () => {
    const mixed =
      readFileSync(new URL("full.yaml", FIXTURES), "utf8") +
      "\n---\n" +
      readFileSync(new URL("secrets.yaml", FIXTURES), "utf8");
    assert.equal(parseCnvrgApps(mixed, "mixed.yaml").length, 1);
  });

  test("GIVEN a kubectl List WHEN the file is read THEN its CnvrgApp items are returned", () => {
    const list = yaml.dump({
      apiVersion: "v1",
      kind: "List",
      items: [app(), app({}, { name: "b", namespace: "ns" })],
    });
    assert.equal(parseCnvrgApps(list, "list.yaml").length, 2);
  });
});

describe("scan of broken apps", () => {
  const cases: Array<[string, unknown, string, unknown]> = [
    ["no namespace", app({}, { name: "a" }), "metadata.namespace", undefined],
    [
      "a namespace that is not a DNS label",
      app({}, { name: "a", namespace: "Bad_NS" }),
      "metadata.namespace",
      "Bad_NS",
    ],
    ["spec.dbs not an object", { ...app(), spec: { dbs: "pg" } }, "spec.dbs", "pg"],
    [
      "a port out of range",
      app({ pg: { enabled: true, port: 70000, backup: { enabled: true } } }),
      "spec.dbs.pg.port",
      70000,
    ],
    [
      "enabled as a string",
      app({ pg: { enabled: "yes", backup: { enabled: true } } }),
      "spec.dbs.pg.enabled",
      "yes",
    ],
    [
      "a numeric period",
      app({ pg: { enabled: true, backup: { enabled: true, period: 24 } } }),
      "spec.dbs.pg.backup.period",
      24,
    ],
    [
      "a zero rotation",
      app({ pg: { enabled: true, backup: { enabled: true, rotation: 0 } } }),
      "spec.dbs.pg.backup.rotation",
      0,
    ],
    [
      "a bad svcName",
      app({ redis: { enabled: true, svcName: "Redis!", backup: { enabled: true } } }),
      "spec.dbs.redis.svcName",
      "Redis!",
    ],
  ];
  for (const [given, broken, field, value] of cases) {
    test(`GIVEN ${given} beside a good app WHEN scanned THEN ${field} is named and the good app is still planned`, () => {
      const good = app({}, { name: "good", namespace: "other" });
      const { plans, skipped } = scan([broken, good]);
      assert.ok(planOf(plans, "other.good")?.spec.targets.length === 1);
      const hit = skipped.find((s) => s.field === field);
      assert.ok(hit, `no skip for ${field}: ${JSON.stringify(skipped)}`);
      assert.deepEqual(hit.value, value);
      assert.match(hit.app, /\/a$/);
    });
  }

  test("GIVEN garbage instead of an app WHEN scanned THEN it is skipped and nothing throws", () => {
    const { plans, skipped } = scan([null, 42, "CnvrgApp", app()]);
    assert.equal(plans.length, 1);
    assert.equal(skipped.filter((s) => s.field === "metadata.namespace").length, 3);
  });

  test("GIVEN a disabled database with garbage fields WHEN scanned THEN nothing is reported for it", () => {
    const { skipped } = scan([app({ es: { enabled: false, port: "x", backup: "y" } })]);
    assert.deepEqual(skipped, []);
  });

  test("GIVEN redis backing up to its own bucket Secret WHEN scanned THEN the target overrides the plan's storage", () => {
    const { plans } = scan([
      app({ redis: { enabled: true, backup: { enabled: true, bucketRef: "redis-bucket" } } }),
    ]);
    const redis = plans[0]?.spec.targets.find((t) => t.name === "redis");
    assert.equal(plans[0]?.spec.storage.bucketSecretRef?.secretName, "cp-object-storage");
    assert.equal(redis?.storage?.bucketSecretRef?.secretName, "redis-bucket");
  });

  test("GIVEN the same apps WHEN scanned twice THEN the plans are identical (pure)", () => {
    assert.deepEqual(scan(ALL), scan(ALL));
  });
});
