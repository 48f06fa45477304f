import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import yaml from "js-yaml";
import { loadPlans, parsePlans } from "../../src/plan/load.js";
import { mergePlans } from "../../src/plan/merge.js";
import { PlanError } from "../../src/plan/plan-error.js";
import { scan } from "../../src/scanner/scan.js";

/** A minimal valid plan; `spec` entries are merged over it, `target` over its one target. */
function plan(spec: Record<string, unknown> = {}, target: Record<string, unknown> = {}) {
  return {
    apiVersion: "capsule.cnvrg.io/v1",
    kind: "BackupPlan",
    metadata: { cluster: "ns.app" },
    spec: {
      storage: { bucket: "backups" },
      targets: [{ name: "pg", engine: "postgresql", namespace: "ns", ...target }],
      ...spec,
    },
  };
}

function problemsOf(text: string, file = "plans/ml.yaml"): string[] {
  try {
    const plans = parsePlans(text, file);
    mergePlans([], plans);
  } catch (error) {
    if (error instanceof PlanError) return [...error.problems];
    throw error;
  }
  return [];
}

describe("invalid plans give the documented messages", () => {
  const cases: Array<[string, unknown, string]> = [
    [
      "keepLast 0",
      plan({}, { retention: { keepLast: 0 } }),
      "plans/ml.yaml: /spec/targets/0/retention/keepLast must be >= 1 (got 0)",
    ],
    [
      "an unknown field",
      plan({}, { retension: {} }),
      "plans/ml.yaml: /spec/targets/0/retension is not a known field",
    ],
    [
      "an unknown engine",
      plan({}, { engine: "mysql" }),
      'plans/ml.yaml: /spec/targets/0/engine must be equal to one of the allowed values (got "mysql")',
    ],
    [
      "no namespace",
      plan({}, { namespace: undefined }),
      "plans/ml.yaml: /spec/targets/0/namespace is required",
    ],
    [
      "a wrong kind",
      { ...plan(), kind: "Plan" },
      'plans/ml.yaml: /kind must be equal to constant (got "Plan")',
    ],
    [
      "a port as a string",
      plan({}, { connection: { port: "5432" } }),
      'plans/ml.yaml: /spec/targets/0/connection/port must be integer (got "5432")',
    ],
    [
      "a bad period",
      plan({}, { schedule: { period: "daily" } }),
      'plans/ml.yaml: /spec/targets/0/schedule/period must be <number><s|m|h|d>, e.g. 24h, with a number from 1 to 999999 (got "daily")',
    ],
    [
      "cron and period both",
      plan({}, { schedule: { cron: "0 1 * * *", period: "24h" } }),
      'plans/ml.yaml: /spec/targets/0/schedule must NOT have more than 1 properties (got {"cron":"0 1 * * *","period":"24h"})',
    ],
    [
      "a 6-field cron",
      plan({}, { schedule: { cron: "0 0 1 * * *" } }),
      'plans/ml.yaml: /spec/targets/0/schedule/cron must have 5 fields (minute hour day-of-month month day-of-week) or be a macro (got "0 0 1 * * *")',
    ],
    [
      "a database on redis",
      plan({}, { engine: "redis", connection: { host: "redis", database: "0" } }),
      'plans/ml.yaml: /spec/targets/0/connection/database is only for postgresql, not redis (got "0")',
    ],
    [
      "redis without host",
      plan({}, { engine: "redis" }),
      "plans/ml.yaml: /spec/targets/0/connection/host is required for redis",
    ],
    [
      "a credential role the engine does not use",
      plan(
        {},
        { engine: "redis", connection: { host: "r" }, credentials: { secretName: "s", keys: { user: "U" } } },
      ),
      'plans/ml.yaml: /spec/targets/0/credentials/keys/user is not used by redis (got "U")',
    ],
    [
      "storage without a bucket",
      plan({ storage: { prefix: "x" } }),
      "plans/ml.yaml: /spec/storage must name a bucket or a bucketSecretRef",
    ],
    [
      "no storage and no scanned app",
      plan({ storage: undefined }),
      'plans/ml.yaml: /spec/storage is required: no scanned CnvrgApp provides storage for cluster "ns.app"',
    ],
    [
      "a root user",
      plan({ pod: { runAsUser: 0 } }),
      "plans/ml.yaml: /spec/pod/runAsUser must be >= 1 (got 0)",
    ],
    [
      "an uppercase cluster",
      { ...plan(), metadata: { cluster: "NS.App" } },
      'plans/ml.yaml: /metadata/cluster must match pattern "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$" (got "NS.App")',
    ],
  ];
  for (const [given, document, message] of cases) {
    test(`GIVEN ${given} WHEN loaded THEN the message reads: ${message}`, () => {
      assert.ok(
        problemsOf(yaml.dump(document, { skipInvalid: true })).includes(message),
        problemsOf(yaml.dump(document, { skipInvalid: true })).join("\n"),
      );
    });
  }

  test("GIVEN several problems WHEN loaded THEN all are reported at once", () => {
    const problems = problemsOf(yaml.dump(plan({}, { retention: { keepLast: 0 }, suspend: "no", extra: 1 })));
    assert.equal(problems.length, 3, problems.join("\n"));
  });

  test("GIVEN a second document with a problem WHEN loaded THEN the document is named", () => {
    const text = `${yaml.dump(plan())}---\n${yaml.dump({ ...plan({}, { retention: { keepLast: 0 } }), metadata: { cluster: "b" } })}`;
    assert.deepEqual(problemsOf(text), [
      "plans/ml.yaml#2: /spec/targets/0/retention/keepLast must be >= 1 (got 0)",
    ]);
  });

  test("GIVEN two targets with the same name WHEN loaded THEN the duplicate is named", () => {
    const doc = plan();
    const twice = { ...doc, spec: { ...doc.spec, targets: [doc.spec.targets[0], doc.spec.targets[0]] } };
    assert.deepEqual(problemsOf(yaml.dump(twice)), [
      'plans/ml.yaml: /spec/targets/1/name duplicates /spec/targets/0/name (got "pg")',
    ]);
  });

  test("GIVEN broken YAML WHEN loaded THEN the file is named", () => {
    assert.match(problemsOf("spec: [unclosed")[0] ?? "", /^plans\/ml\.yaml: invalid YAML: /);
  });
});

describe("defaults and merge", () => {
  test("GIVEN a minimal plan WHEN resolved THEN defaults fill every field", () => {
    const [resolved] = mergePlans([], parsePlans(yaml.dump(plan()), "p.yaml"));
    const target = resolved?.spec.targets[0];
    assert.ok(resolved && target);
    assert.equal(resolved.spec.storage.prefix, "capsule");
    assert.equal(target.connection.port, 5432);
    assert.equal(target.credentials.secretName, "pg-creds");
    assert.deepEqual(target.retention, { keepLast: 5, failedGraceHours: 72 });
    assert.match(target.schedule.cron, /^\d+ \d+ \* \* \*$/);
    assert.equal(target.deadlines.backoffLimit, 1);
  });

  test("GIVEN a scanned app and a hand-written target of the same name WHEN merged THEN the hand-written one wins and the others stay", () => {
    const scanned = scan([
      {
        apiVersion: "mlops.cnvrg.io/v1",
        kind: "CnvrgApp",
        metadata: { name: "app", namespace: "ns" },
        spec: {
          dbs: {
            pg: { enabled: true, backup: { enabled: true } },
            redis: { enabled: true, backup: { enabled: true } },
          },
        },
      },
    ]).plans;
    const handWritten = plan({ storage: undefined }, { name: "postgresql", retention: { keepLast: 30 } });
    const [merged] = mergePlans(scanned, parsePlans(yaml.dump(handWritten, { skipInvalid: true }), "p.yaml"));
    assert.deepEqual(
      merged?.spec.targets.map((t) => [t.name, t.retention.keepLast]),
      [
        ["redis", 5],
        ["postgresql", 30],
      ],
    );
    assert.equal(
      merged?.spec.storage.bucketSecretRef?.secretName,
      "cp-object-storage",
      "storage falls back to the scanned app's",
    );
  });

  test("GIVEN two files planning the same cluster WHEN loaded and merged THEN the second names the first", async () => {
    const dir = await mkdtemp(join(tmpdir(), "capsule-plans-"));
    await writeFile(join(dir, "a.yaml"), yaml.dump(plan()));
    await writeFile(join(dir, "b.yml"), yaml.dump(plan()));
    await writeFile(join(dir, "notes.txt"), "not a plan");
    const loaded = await loadPlans(dir);
    assert.equal(loaded.length, 2);
    assert.throws(
      () => mergePlans([], loaded),
      (error: PlanError) => {
        assert.deepEqual(error.problems, [
          `${join(dir, "b.yml")}: /metadata/cluster is already planned in ${join(dir, "a.yaml")} (got "ns.app")`,
        ]);
        return true;
      },
    );
  });

  test("GIVEN the resolved plans printed as JSON WHEN loaded back as a plan file THEN they resolve to the same plans", () => {
    const first = mergePlans(
      [],
      parsePlans(
        yaml.dump(plan({}, { schedule: { period: "6h" }, verify: { schedule: { period: "7d" } } })),
        "p.yaml",
      ),
    );
    const again = mergePlans([], parsePlans(JSON.stringify(first), "plans.json"));
    assert.deepEqual(again, first);
  });

  test("GIVEN the shipped example WHEN loaded THEN it resolves with all three engines", async () => {
    const plans = mergePlans([], await loadPlans("plans"));
    assert.deepEqual(plans.flatMap((p) => p.spec.targets.map((t) => t.engine)).sort(), [
      "elasticsearch",
      "postgresql",
      "redis",
    ]);
  });
});
