/** The reconciler's pure core: desired state from CnvrgApps and plans, and the diff against live CronJobs. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ANNOTATIONS, LABELS, MANAGED_BY, type CronJobManifest } from "../../src/compiler/cronjob.js";
import type { LiveCronJob } from "../../src/k8s/workloads.js";
import { desiredState } from "../../src/reconciler/desired.js";
import { diffCronJobs } from "../../src/reconciler/diff.js";
import { parsePlans } from "../../src/plan/load.js";
import { cnvrgApp } from "../fakes/cnvrgapps.js";

function live(manifest: CronJobManifest, overrides: Partial<LiveCronJob> = {}): LiveCronJob {
  return {
    namespace: manifest.metadata.namespace,
    name: manifest.metadata.name,
    resourceVersion: "1",
    labels: manifest.metadata.labels,
    annotations: manifest.metadata.annotations,
    ...overrides,
  };
}

const foreign = (namespace: string, name: string, labels: Record<string, string> = {}): LiveCronJob => ({
  namespace,
  name,
  resourceVersion: "1",
  labels,
  annotations: {},
});

describe("desiredState", () => {
  test("GIVEN two apps WHEN planned THEN one CronJob per backed-up engine, nothing held", () => {
    const d = desiredState(
      [cnvrgApp("a", "x", { engines: ["postgresql", "redis"] }), cnvrgApp("b", "y")],
      [],
    );
    assert.deepEqual(
      d.cronJobs.map((c) => `${c.metadata.namespace}/${c.metadata.name}`),
      ["a/capsule-a-x-postgresql", "a/capsule-a-x-redis", "b/capsule-b-y-postgresql"],
    );
    assert.equal(d.held.size, 0);
    assert.deepEqual(d.problems, []);
  });

  test("GIVEN an app with a broken period WHEN planned THEN its target is skipped and held", () => {
    const d = desiredState([cnvrgApp("a", "x", { period: "every day" }), cnvrgApp("b", "y")], []);
    assert.equal(d.cronJobs.length, 1);
    assert.equal(d.skipped.length, 1);
    assert.deepEqual([...d.held], ["a.x/postgresql"]);
  });

  test("GIVEN --namespace WHEN a hand-written plan targets another namespace THEN it is reported, not applied", () => {
    const plans = parsePlans(
      `apiVersion: capsule.cnvrg.io/v1
kind: BackupPlan
metadata: {cluster: hand}
spec:
  storage: {bucket: backups}
  targets:
    - {name: db, engine: postgresql, namespace: elsewhere, connection: {host: pg}}
`,
      "hand.yaml",
    );
    const d = desiredState([cnvrgApp("a", "x")], plans, { namespace: "a" });
    assert.deepEqual(
      d.cronJobs.map((c) => c.metadata.name),
      ["capsule-a-x-postgresql"],
    );
    assert.match(d.problems[0] ?? "", /namespace elsewhere is outside --namespace a/);
  });
});

describe("diffCronJobs", () => {
  const [pg, redis] = desiredState([cnvrgApp("a", "x", { engines: ["postgresql", "redis"] })], [])
    .cronJobs as [CronJobManifest, CronJobManifest];

  const cases: Array<{
    name: string;
    live: LiveCronJob[];
    held?: string[];
    expect: { create: number; replace: number; delete: string[]; unchanged: number; held: number };
  }> = [
    {
      name: "nothing exists",
      live: [],
      expect: { create: 2, replace: 0, delete: [], unchanged: 0, held: 0 },
    },
    {
      name: "all exist unchanged",
      live: [live(pg), live(redis)],
      expect: { create: 0, replace: 0, delete: [], unchanged: 2, held: 0 },
    },
    {
      name: "one spec-hash differs",
      live: [
        live(pg, { annotations: { ...pg.metadata.annotations, [ANNOTATIONS.specHash]: "old" } }),
        live(redis),
      ],
      expect: { create: 0, replace: 1, delete: [], unchanged: 1, held: 0 },
    },
    {
      name: "a managed CronJob is no longer desired",
      live: [
        live(pg),
        live(redis),
        foreign("a", "capsule-a-gone-postgresql", {
          [LABELS.managedBy]: MANAGED_BY,
          [LABELS.target]: "postgresql",
        }),
      ],
      expect: { create: 0, replace: 0, delete: ["capsule-a-gone-postgresql"], unchanged: 2, held: 0 },
    },
    {
      name: "a CronJob not managed by capsule",
      live: [
        live(pg),
        live(redis),
        foreign("a", "someone-elses"),
        foreign("a", "other", { [LABELS.managedBy]: "helm" }),
      ],
      expect: { create: 0, replace: 0, delete: [], unchanged: 2, held: 0 },
    },
    {
      name: "an undesired CronJob of a held cluster",
      live: [
        live(pg),
        live(redis),
        {
          ...foreign("b", "capsule-b-y-postgresql", {
            [LABELS.managedBy]: MANAGED_BY,
            [LABELS.target]: "postgresql",
          }),
          annotations: { [ANNOTATIONS.cluster]: "b.y" },
        },
      ],
      held: ["b.y/postgresql"],
      expect: { create: 0, replace: 0, delete: [], unchanged: 2, held: 1 },
    },
  ];
  for (const c of cases) {
    test(`GIVEN ${c.name} WHEN diffed THEN create ${c.expect.create}, replace ${c.expect.replace}, delete ${c.expect.delete.length}`, () => {
      const d = diffCronJobs([pg, redis], c.live, new Set(c.held ?? []));
      assert.equal(d.create.length, c.expect.create);
      assert.equal(d.replace.length, c.expect.replace);
      assert.deepEqual(
        d.delete.map((x) => x.name),
        c.expect.delete,
      );
      assert.equal(d.unchanged, c.expect.unchanged);
      assert.equal(d.held.length, c.expect.held);
    });
  }
});
