/**
 * Drift repair against the wire-level fake API server: a managed CronJob edited by hand (the fake's direct `put`,
 * as `kubectl edit` would, its spec-hash annotation left as it was) is put back by the next pass; edits to fields
 * capsule does not own, and an untouched world, cost zero writes.
 */
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";
import { ownedFieldDrift } from "../../src/reconciler/drift.js";
import { Reconciler } from "../../src/reconciler/reconciler.js";
import { cnvrgApp } from "../fakes/cnvrgapps.js";
import { FakeKubeApiServer } from "../fakes/kube-apiserver.js";
import { capturedLogger, clientsFor } from "../fakes/kube-clients.js";

type CronJob = Record<string, unknown> & {
  metadata: { labels: Record<string, string>; annotations: Record<string, string> };
  spec: {
    schedule: string;
    suspend?: boolean;
    jobTemplate: { spec: { template: { spec: { containers: Container[]; volumes: Volume[] } } } };
  };
};
type Container = {
  name: string;
  image: string;
  args: string[];
  env: Array<{ name: string; value?: string; valueFrom?: unknown }>;
  resources: { requests: Record<string, string>; limits: Record<string, string> };
  securityContext: Record<string, unknown>;
  [key: string]: unknown;
};
type Volume = { name: string; emptyDir: { sizeLimit: string } };

const NS = "ns-a";
const NAME = "capsule-ns-a-app-postgresql";
const container = (c: CronJob): Container => c.spec.jobTemplate.spec.template.spec.containers[0]!;

/** The fields capsule writes, without what the server stamps (resourceVersion, uid, generation, timestamps). */
function owned(c: CronJob | undefined): unknown {
  assert.ok(c, "the CronJob exists");
  const { labels, annotations, name, namespace } = c.metadata as CronJob["metadata"] &
    Record<string, unknown>;
  return { metadata: { labels, annotations, name, namespace }, spec: c.spec };
}

describe("reconciler: drift repair (fake API server)", () => {
  let fake: FakeKubeApiServer;

  beforeEach(async () => {
    fake = await new FakeKubeApiServer().start();
    fake.put("cnvrgapps", cnvrgApp(NS, "app"));
  });
  afterEach(async () => {
    await fake.close();
  });

  async function reconciled() {
    const clients = await clientsFor(fake);
    const log = capturedLogger();
    const r = new Reconciler({ kube: clients.kube, workloads: clients.workloads, log });
    const first = await r.pass();
    assert.equal(first.created, 1);
    fake.resetCounters();
    return { r, log, compiled: owned(fake.get("cronjobs", NS, NAME) as CronJob) };
  }

  /** Edits the stored CronJob directly: no write is counted, its resourceVersion moves on, as after kubectl edit. */
  function handEdit(edit: (c: CronJob) => void): void {
    const current = fake.get("cronjobs", NS, NAME) as CronJob;
    edit(current);
    fake.put("cronjobs", current);
  }

  const drifts: Array<[string, (c: CronJob) => void, RegExp]> = [
    ["schedule", (c) => (c.spec.schedule = "*/1 * * * *"), /^spec\.schedule$/],
    ["suspend", (c) => (c.spec.suspend = true), /^spec\.suspend$/],
    ["image", (c) => (container(c).image = "evil.example/capsule:latest"), /\.image$/],
    ["args", (c) => (container(c).args = ["run", "--help"]), /\.args\[\d+\]$|\.args$/],
    [
      "env value",
      (c) => (container(c).env.find((e) => e.value !== undefined)!.value = "changed"),
      /\.env\[\d+\]\.value$/,
    ],
    ["env (a variable added)", (c) => container(c).env.push({ name: "EXTRA", value: "1" }), /\.env$/],
    ["env (a variable removed)", (c) => container(c).env.pop(), /\.env$/],
    ["memory limit", (c) => (container(c).resources.limits["memory"] = "64Gi"), /\.limits\.memory$/],
    [
      "runAsNonRoot",
      (c) => (container(c).securityContext["runAsNonRoot"] = false),
      /\.securityContext\.runAsNonRoot$/,
    ],
    [
      "capsule labels",
      (c) => (c.metadata.labels["capsule.cnvrg.io/target"] = "other"),
      /^metadata\.labels\.capsule\.cnvrg\.io\/target$/,
    ],
  ];
  for (const [what, edit, field] of drifts) {
    test(`GIVEN a hand edit of a managed CronJob's ${what} WHEN the next pass runs THEN it is put back with one replace, then left alone`, async () => {
      const { r, log, compiled } = await reconciled();
      handEdit(edit);
      assert.notDeepEqual(owned(fake.get("cronjobs", NS, NAME) as CronJob), compiled, "the edit took");

      const repair = await r.pass();
      assert.equal(repair.replaced, 1);
      assert.deepEqual(fake.writes, [{ verb: "replace", resource: "cronjobs", namespace: NS, name: NAME }]);
      assert.deepEqual(owned(fake.get("cronjobs", NS, NAME) as CronJob), compiled);
      const line = log.lines.find((l) => l["msg"] === "replaced CronJob");
      assert.match(String(line?.["reason"]), /^drift at /);
      assert.match(String(line?.["reason"]).slice("drift at ".length), field);

      fake.resetCounters();
      const after = await r.pass();
      assert.equal(after.unchanged, 1);
      assert.equal(fake.writeCount(), 0, "a repaired CronJob costs no further writes");
    });
  }

  const notDrift: Array<[string, (c: CronJob) => void]> = [
    ["nothing", () => undefined],
    ["a label added by another tool", (c) => (c.metadata.labels["team"] = "ml")],
    [
      "an annotation added by kubectl",
      (c) => (c.metadata.annotations["kubectl.kubernetes.io/restartedAt"] = "x"),
    ],
    [
      "fields the API server defaults",
      (c) => {
        Object.assign(container(c), {
          terminationMessagePath: "/dev/termination-log",
          terminationMessagePolicy: "File",
        });
        Object.assign(c.spec.jobTemplate.spec.template.spec, {
          dnsPolicy: "ClusterFirst",
          schedulerName: "default",
        });
      },
    ],
    [
      "quantities in the server's canonical form",
      (c) => {
        const { resources } = container(c);
        resources.limits["memory"] = `${quantityMi(resources.limits["memory"]!)}Mi`;
        resources.requests["cpu"] = `${Number.parseInt(resources.requests["cpu"]!, 10) / 1000}`;
        const tmp = c.spec.jobTemplate.spec.template.spec.volumes[0]!;
        tmp.emptyDir.sizeLimit = `${quantityMi(tmp.emptyDir.sizeLimit) * 1024}Ki`;
      },
    ],
  ];
  for (const [what, edit] of notDrift) {
    test(`GIVEN a managed CronJob with ${what} changed by hand WHEN the next pass runs THEN it makes zero writes`, async () => {
      const { r } = await reconciled();
      handEdit(edit);
      const pass = await r.pass();
      assert.deepEqual([pass.created, pass.replaced, pass.deleted, pass.unchanged], [0, 0, 0, 1]);
      assert.equal(fake.writeCount(), 0);
    });
  }
});

/** `1Gi` → 1024, `256Mi` → 256: the test's own arithmetic on the two forms the compiler uses. */
function quantityMi(q: string): number {
  if (q.endsWith("Gi")) return Number(q.slice(0, -2)) * 1024;
  if (q.endsWith("Mi")) return Number(q.slice(0, -2));
  throw new Error(`test: unexpected quantity ${q}`);
}

describe("ownedFieldDrift", () => {
  const cases: Array<[string, unknown, unknown, string | undefined]> = [
    ["equal", { a: 1, b: ["x"] }, { a: 1, b: ["x"] }, undefined],
    ["an extra live key", { a: 1 }, { a: 1, z: 2 }, undefined],
    ["a changed value", { a: { b: "x" } }, { a: { b: "y" } }, "a.b"],
    ["a missing key", { a: { b: "x" } }, { a: {} }, "a.b"],
    ["a longer list", { a: [1] }, { a: [1, 2] }, "a"],
    ["an empty string the server dropped", { a: { b: "" } }, { a: {} }, undefined],
    ["a value where capsule set an empty string", { a: { b: "" } }, { a: { b: "x" } }, "a.b"],
    ["false is not absent", { a: false }, {}, "a"],
    [
      "0.5 CPU as 500m",
      { x: { resources: { limits: { cpu: "0.5" } } } },
      { x: { resources: { limits: { cpu: "500m" } } } },
      undefined,
    ],
    [
      "1 CPU as 2",
      { x: { resources: { limits: { cpu: "1" } } } },
      { x: { resources: { limits: { cpu: "2" } } } },
      "x.resources.limits.cpu",
    ],
    ["a quantity-like string elsewhere", { image: "1Gi" }, { image: "1024Mi" }, "image"],
  ];
  for (const [what, desired, live, expected] of cases) {
    test(`GIVEN ${what} WHEN compared THEN ${expected === undefined ? "no drift" : `drift at ${expected}`}`, () => {
      assert.equal(ownedFieldDrift(desired, live), expected);
    });
  }
});
