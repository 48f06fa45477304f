/**
 * The reconciler against the wire-level fake API server, through @kubernetes/client-node unchanged: every number
 * below is counted by the fake from the HTTP requests it received.
 */
import assert from "node:assert/strict";
import { after, afterEach, beforeEach, describe, test } from "node:test";
import { LABELS, MANAGED_BY } from "../../src/compiler/cronjob.js";
import { ReconcileLoop } from "../../src/reconciler/loop.js";
import { Reconciler } from "../../src/reconciler/reconciler.js";
import { DaemonMetrics } from "../../src/status/metrics.js";
import { cnvrgApp } from "../fakes/cnvrgapps.js";
import { FakeKubeApiServer } from "../fakes/kube-apiserver.js";
import { capturedLogger, clientsFor, eventually } from "../fakes/kube-clients.js";

const CRONJOBS = "/apis/batch/v1";

describe("reconciler (fake API server)", () => {
  let fake: FakeKubeApiServer;
  const loops: ReconcileLoop[] = [];

  beforeEach(async () => {
    fake = await new FakeKubeApiServer().start();
  });
  afterEach(async () => {
    await Promise.all(loops.splice(0).map((l) => l.stop()));
    await fake.close();
  });
  after(() => undefined);

  async function reconciler(options: { namespace?: string; timeoutMs?: number } = {}) {
    const clients = await clientsFor(fake, options.timeoutMs ?? 2000);
    const log = capturedLogger();
    const metrics = new DaemonMetrics({ defaultMetrics: false });
    const r = new Reconciler({
      kube: clients.kube,
      workloads: clients.workloads,
      events: clients.events,
      log,
      metrics,
      ...(options.namespace !== undefined && { namespace: options.namespace }),
    });
    return { r, log, metrics, clients };
  }

  function seed(count: number): void {
    for (let i = 0; i < count; i++)
      fake.put("cnvrgapps", cnvrgApp(`ns-${i}`, `app-${i}`, { engines: ["postgresql", "redis"] }));
  }

  test("GIVEN 5 CnvrgApps and no CronJobs WHEN a pass runs THEN 10 CronJobs are created; a second pass writes nothing", async () => {
    seed(5);
    const { r } = await reconciler();
    const first = await r.pass();
    assert.equal(first.created, 10);
    assert.equal(fake.writeCount({ resource: "cronjobs" }), 10);
    assert.equal(fake.list("cronjobs").length, 10);

    fake.resetCounters();
    const second = await r.pass();
    assert.deepEqual([second.created, second.replaced, second.deleted, second.unchanged], [0, 0, 0, 10]);
    assert.equal(fake.writeCount(), 0, "an unchanged world must cost zero writes");
  });

  test("GIVEN a reconciled world WHEN one app's period changes THEN exactly one CronJob is replaced", async () => {
    seed(3);
    const { r } = await reconciler();
    await r.pass();
    fake.resetCounters();
    fake.put("cnvrgapps", {
      ...cnvrgApp("ns-1", "app-1", { engines: ["postgresql", "redis"] }),
      spec: {
        dbs: {
          pg: { enabled: true, svcName: "postgres", port: 5432, backup: { enabled: true, period: "6h" } },
          redis: { enabled: true, svcName: "redis", port: 6379, backup: { enabled: true, period: "24h" } },
        },
      },
    });
    const pass = await r.pass();
    assert.equal(pass.replaced, 1);
    assert.deepEqual(fake.writes, [
      { verb: "replace", resource: "cronjobs", namespace: "ns-1", name: "capsule-ns-1-app-1-postgresql" },
    ]);
    const schedule = (
      fake.get("cronjobs", "ns-1", "capsule-ns-1-app-1-postgresql")?.["spec"] as { schedule: string }
    ).schedule;
    assert.match(schedule, /\*\/6|-23\/6/);
  });

  test("GIVEN a reconciled world WHEN an app is deleted THEN its CronJobs are pruned and nothing else is touched", async () => {
    seed(3);
    fake.put("cronjobs", {
      metadata: { namespace: "ns-0", name: "not-ours", labels: { team: "x" } },
      spec: { schedule: "0 0 * * *", jobTemplate: {} },
    });
    fake.put("cronjobs", {
      metadata: { namespace: "ns-0", name: "helm-managed", labels: { [LABELS.managedBy]: "Helm" } },
      spec: { schedule: "0 0 * * *", jobTemplate: {} },
    });
    const { r } = await reconciler();
    await r.pass();
    fake.resetCounters();
    fake.remove("cnvrgapps", "ns-2", "app-2");
    const pass = await r.pass();
    assert.equal(pass.deleted, 2);
    assert.deepEqual(fake.writes.map((w) => `${w.verb} ${w.namespace}/${w.name}`).sort(), [
      "delete ns-2/capsule-ns-2-app-2-postgresql",
      "delete ns-2/capsule-ns-2-app-2-redis",
    ]);
    assert.ok(fake.get("cronjobs", "ns-0", "not-ours"));
    assert.ok(fake.get("cronjobs", "ns-0", "helm-managed"));
  });

  test("GIVEN an unmanaged CronJob with the name capsule wants WHEN a pass runs THEN it is left alone and reported", async () => {
    seed(1);
    fake.put("cronjobs", {
      metadata: { namespace: "ns-0", name: "capsule-ns-0-app-0-postgresql", labels: { team: "x" } },
      spec: { schedule: "1 2 * * *", jobTemplate: {} },
    });
    const { r, metrics } = await reconciler();
    const pass = await r.pass();
    assert.equal(pass.created, 1, "the redis CronJob is still created");
    assert.equal(pass.failed, 1);
    assert.match(pass.errors[0] ?? "", /exists but is not labelled app\.kubernetes\.io\/managed-by=capsule/);
    assert.equal(
      (fake.get("cronjobs", "ns-0", "capsule-ns-0-app-0-postgresql")?.["spec"] as { schedule: string })
        .schedule,
      "1 2 * * *",
    );
    assert.match(await metrics.registry.metrics(), /capsule_reconcile_total\{result="partial"\} 1/);
  });

  test("GIVEN an app with a broken period WHEN passes run THEN it is skipped with one Event, and its old CronJob is kept", async () => {
    seed(1);
    const { r, log } = await reconciler();
    await r.pass();
    // The user breaks the period of app-0: the target is skipped, its CronJob held, not deleted.
    fake.put(
      "cnvrgapps",
      cnvrgApp("ns-0", "app-0", { engines: ["postgresql", "redis"], period: "every day" }),
    );
    fake.resetCounters();
    const pass = await r.pass();
    assert.equal(pass.skipped, 2);
    assert.equal(pass.held, 2);
    assert.equal(fake.writeCount({ resource: "cronjobs" }), 0);
    const events = fake.list("events", "ns-0");
    assert.equal(events.length, 2);
    assert.equal(events[0]?.["reason"], "BackupSkipped");
    assert.match(String(events[0]?.["message"]), /spec\.dbs\.(pg|redis)\.backup\.period/);
    assert.ok(log.has("CnvrgApp skipped"));
    await r.pass();
    assert.equal(fake.list("events", "ns-0").length, 2, "the same skip is not reported twice");
  });

  test("GIVEN the API failing for a while WHEN the loop runs THEN it backs off and converges when the API is back", async () => {
    seed(2);
    fake.failNext({ path: `${CRONJOBS}/cronjobs`, count: 3, mode: 500 });
    fake.failNext({
      method: "POST",
      path: `${CRONJOBS}/namespaces/ns-1/cronjobs`,
      count: 2,
      mode: "timeout",
    });
    const { r, log, metrics, clients } = await reconciler({ timeoutMs: 300 });
    const loop = new ReconcileLoop(r, {
      log,
      kube: clients.kube,
      resyncMs: 60_000,
      initialBackoffMs: 20,
      maxBackoffMs: 100,
      debounceMs: 10,
    });
    loops.push(loop);
    loop.start();
    await eventually(() => fake.list("cronjobs").length === 4, 10_000, "4 CronJobs");
    assert.ok(log.has("reconcile failed"));
    assert.ok(log.has("cannot create CronJob"));
    const text = await metrics.registry.metrics();
    assert.match(text, /capsule_reconcile_errors_total\{operation="list-cronjobs"\} 3/);
    assert.match(text, /capsule_reconcile_errors_total\{operation="create"\} 2/);
  });

  test("GIVEN a running loop WHEN a CnvrgApp is added THEN the watch triggers a pass before any resync", async () => {
    seed(1);
    const { r, log, clients } = await reconciler();
    const loop = new ReconcileLoop(r, { log, kube: clients.kube, resyncMs: 600_000, debounceMs: 10 });
    loops.push(loop);
    loop.start();
    await eventually(
      () => fake.list("cronjobs").length === 2 && fake.openWatches === 1,
      5000,
      "first pass and watch",
    );
    fake.put("cnvrgapps", cnvrgApp("late", "app"));
    await eventually(
      () => fake.get("cronjobs", "late", "capsule-late-app-postgresql") !== undefined,
      5000,
      "the new CronJob",
    );
    // A watch whose history was compacted gets 410 Gone: the loop relists and watches again.
    fake.compact();
    fake.closeWatches();
    fake.put("cnvrgapps", cnvrgApp("later", "app"));
    await eventually(
      () => fake.get("cronjobs", "later", "capsule-later-app-postgresql") !== undefined,
      5000,
      "after a 410",
    );
    await eventually(() => fake.openWatches === 1, 5000, "a new watch");
  });

  test("GIVEN --namespace WHEN passes run THEN only that namespace is listed, written and pruned", async () => {
    seed(3);
    fake.put("cronjobs", {
      metadata: {
        namespace: "ns-2",
        name: "capsule-ns-2-old-postgresql",
        labels: { [LABELS.managedBy]: MANAGED_BY },
      },
      spec: { schedule: "0 0 * * *", jobTemplate: {} },
    });
    const { r } = await reconciler({ namespace: "ns-1" });
    const pass = await r.pass();
    assert.equal(pass.created, 2);
    assert.deepEqual([...new Set(fake.writes.map((w) => w.namespace))], ["ns-1"]);
    assert.ok(fake.get("cronjobs", "ns-2", "capsule-ns-2-old-postgresql"), "another namespace is not pruned");
    assert.ok(
      fake.requests.every((q) => !q.url.startsWith("/apis/batch/v1/cronjobs")),
      "no cluster-wide CronJob list",
    );
  });
});
