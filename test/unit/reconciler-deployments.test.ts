/**
 * The reconciler and the WAL streamers' Deployments (pitr targets), against the wire-level fake API server through
 * @kubernetes/client-node unchanged: created beside the CronJobs, put back after a hand edit, pruned when pitr is
 * turned off or the app goes, and a Deployment that is not capsule's never touched.
 */
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";
import { LABELS } from "../../src/compiler/cronjob.js";
import { VolumeClaims } from "../../src/k8s/volume-claims.js";
import { Reconciler } from "../../src/reconciler/reconciler.js";
import { DaemonMetrics } from "../../src/status/metrics.js";
import { cnvrgApp } from "../fakes/cnvrgapps.js";
import { FakeKubeApiServer } from "../fakes/kube-apiserver.js";
import { capturedLogger, clientsFor } from "../fakes/kube-clients.js";

/** A CnvrgApp with pg and redis backed up, pg with point-in-time recovery when `pitr`. */
function app(namespace: string, name: string, pitr: boolean): Record<string, unknown> {
  const base = cnvrgApp(namespace, name, { engines: ["postgresql", "redis"] }) as {
    spec: { dbs: { pg: { backup: Record<string, unknown> } } };
  };
  if (pitr) base.spec.dbs.pg.backup["pitr"] = true;
  return base;
}

const STREAMER = "capsule-ns-0-app-0-postgresql-wal";

describe("reconciler: WAL streamer Deployments (fake API server)", () => {
  let fake: FakeKubeApiServer;

  beforeEach(async () => {
    fake = await new FakeKubeApiServer().start();
  });
  afterEach(async () => {
    await fake.close();
  });

  async function reconciler() {
    const clients = await clientsFor(fake);
    const metrics = new DaemonMetrics({ defaultMetrics: false });
    return {
      r: new Reconciler({ kube: clients.kube, workloads: clients.workloads, log: capturedLogger(), metrics }),
      metrics,
    };
  }

  test("GIVEN a pg target with pitr WHEN a pass runs THEN the streamer Deployment and the base-backup CronJob are created, and a second pass writes nothing", async () => {
    fake.put("cnvrgapps", app("ns-0", "app-0", true));
    const { r, metrics } = await reconciler();
    const first = await r.pass();
    assert.equal(first.failed, 0, first.errors.join("\n"));
    assert.deepEqual(fake.writes.map((w) => `${w.verb} ${w.resource} ${w.name}`).sort(), [
      "create cronjobs capsule-ns-0-app-0-postgresql",
      "create cronjobs capsule-ns-0-app-0-postgresql-base",
      "create cronjobs capsule-ns-0-app-0-redis",
      `create deployments ${STREAMER}`,
    ]);
    const deployment = fake.get("deployments", "ns-0", STREAMER) as {
      metadata: { labels: Record<string, string> };
      spec: {
        replicas: number;
        strategy: { type: string };
        template: { spec: { containers: Array<{ args: string[] }> } };
      };
    };
    assert.equal(deployment.metadata.labels[LABELS.managedBy], "capsule");
    assert.equal(deployment.spec.replicas, 1);
    assert.equal(deployment.spec.strategy.type, "Recreate");
    assert.deepEqual(deployment.spec.template.spec.containers[0]?.args, [
      "run",
      "--cluster",
      "ns-0.app-0",
      "--target",
      "postgresql",
      "--stream-wal",
    ]);
    assert.match(await metrics.registry.metrics(), /capsule_managed_deployments 1/);

    fake.resetCounters();
    const second = await r.pass();
    assert.equal(second.unchanged, 4);
    assert.equal(fake.writeCount(), 0, "an unchanged world must cost zero writes");
  });

  test("GIVEN a reconciled streamer WHEN someone scales it to 2 by hand THEN the next pass puts 1 back (drift)", async () => {
    fake.put("cnvrgapps", app("ns-0", "app-0", true));
    const { r } = await reconciler();
    await r.pass();
    const live = fake.get("deployments", "ns-0", STREAMER)!;
    (live["spec"] as { replicas: number }).replicas = 2;
    fake.put("deployments", live);
    fake.resetCounters();
    const pass = await r.pass();
    assert.equal(pass.replaced, 1);
    assert.deepEqual(fake.writes, [
      { verb: "replace", resource: "deployments", namespace: "ns-0", name: STREAMER },
    ]);
    assert.equal((fake.get("deployments", "ns-0", STREAMER)?.["spec"] as { replicas: number }).replicas, 1);
  });

  test("GIVEN a reconciled streamer WHEN pitr is turned off THEN its Deployment and base-backup CronJob are pruned and an unmanaged Deployment is untouched", async () => {
    fake.put("cnvrgapps", app("ns-0", "app-0", true));
    const theirs = {
      metadata: { namespace: "ns-0", name: "capsule-ns-0-app-0-other-wal", labels: { app: "theirs" } },
      spec: {
        selector: { matchLabels: { app: "theirs" } },
        template: { metadata: { labels: { app: "theirs" } }, spec: { containers: [] } },
      },
    };
    fake.put("deployments", theirs);
    const { r } = await reconciler();
    await r.pass();
    fake.resetCounters();
    fake.put("cnvrgapps", app("ns-0", "app-0", false));
    const pass = await r.pass();
    assert.equal(pass.deleted, 2);
    assert.deepEqual(fake.writes.map((w) => `${w.verb} ${w.resource} ${w.name}`).sort(), [
      "delete cronjobs capsule-ns-0-app-0-postgresql-base",
      `delete deployments ${STREAMER}`,
    ]);
    assert.ok(fake.get("deployments", "ns-0", "capsule-ns-0-app-0-other-wal"), "not capsule's: kept");
    assert.ok(fake.get("cronjobs", "ns-0", "capsule-ns-0-app-0-postgresql"), "the logical backups go on");
  });

  test("GIVEN an unmanaged Deployment with the streamer's name WHEN a pass runs THEN it is left alone and the write reported", async () => {
    fake.put("cnvrgapps", app("ns-0", "app-0", true));
    fake.put("deployments", {
      metadata: { namespace: "ns-0", name: STREAMER, labels: { app: "theirs" } },
      spec: {
        replicas: 3,
        selector: { matchLabels: { app: "theirs" } },
        template: { metadata: { labels: { app: "theirs" } }, spec: { containers: [] } },
      },
    });
    const { r } = await reconciler();
    const pass = await r.pass();
    assert.equal(pass.failed, 1);
    assert.match(pass.errors[0] ?? "", /^Deployment ns-0\/\S+ exists but is not labelled/);
    assert.equal((fake.get("deployments", "ns-0", STREAMER)?.["spec"] as { replicas: number }).replicas, 3);
  });

  test("GIVEN a reconciled streamer WHEN the app's pg backup block breaks THEN the Deployment is held, not deleted", async () => {
    fake.put("cnvrgapps", app("ns-0", "app-0", true));
    const { r } = await reconciler();
    await r.pass();
    const broken = app("ns-0", "app-0", true) as {
      spec: { dbs: { pg: { backup: Record<string, unknown> } } };
    };
    broken.spec.dbs.pg.backup["baseBackupPeriod"] = "every night";
    fake.put("cnvrgapps", broken);
    fake.resetCounters();
    const pass = await r.pass();
    assert.equal(pass.skipped, 1);
    assert.equal(pass.deleted, 0);
    assert.equal(pass.held, 3, "the pg CronJobs and the streamer are kept as they are");
    assert.equal(fake.writeCount(), 0);
    assert.ok(fake.get("deployments", "ns-0", STREAMER));
  });

  test("GIVEN a reconciled streamer WHEN the CnvrgApp is deleted THEN every workload of it is pruned", async () => {
    fake.put("cnvrgapps", app("ns-0", "app-0", true));
    const { r } = await reconciler();
    await r.pass();
    fake.remove("cnvrgapps", "ns-0", "app-0");
    const pass = await r.pass();
    assert.equal(pass.deleted, 4);
    assert.equal(fake.list("deployments").length, 0);
    assert.equal(fake.list("cronjobs").length, 0);
  });
});

describe("fake API server: apps/v1 Deployments and PVCs speak the wire protocol", () => {
  let fake: FakeKubeApiServer;
  beforeEach(async () => {
    fake = await new FakeKubeApiServer().start();
  });
  afterEach(async () => {
    await fake.close();
  });

  const deployment = (labels: Record<string, string>, selector: Record<string, string>) => ({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { namespace: "ns", name: "d", labels: { "app.kubernetes.io/managed-by": "capsule" } },
    spec: {
      selector: { matchLabels: selector },
      strategy: { type: "Recreate" },
      template: { metadata: { labels }, spec: { restartPolicy: "Always", containers: [] } },
    },
  });

  test("GIVEN client-node WHEN it creates, lists, replaces and deletes a Deployment THEN the fake answers like the API server", async () => {
    const { workloads } = await clientsFor(fake);
    await workloads.createDeployment(deployment({ a: "1" }, { a: "1" }));
    const [listed] = await workloads.deploymentsWithTemplates("app.kubernetes.io/managed-by=capsule");
    assert.equal(listed?.metadata.name, "d");
    assert.equal(listed?.apiVersion, "apps/v1");
    await assert.rejects(
      workloads.replaceDeployment(deployment({ a: "1" }, { a: "1" }), "1"),
      (e: { status?: number }) => e.status === 409,
      "a stale resourceVersion is a Conflict",
    );
    await assert.rejects(
      workloads.replaceDeployment(
        deployment({ a: "1", b: "2" }, { b: "2" }),
        listed?.metadata.resourceVersion,
      ),
      /field is immutable/,
    );
    await workloads.deleteDeployment("ns", "d", listed?.metadata.resourceVersion);
    assert.equal(fake.list("deployments").length, 0);
  });

  test("GIVEN client-node WHEN it creates a PVC twice or without a size THEN 201, then 409 AlreadyExists, and 422", async () => {
    const { kube } = await clientsFor(fake);
    const claims = new VolumeClaims(kube);
    const claim = (name: string, storage?: string) => ({
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      metadata: { namespace: "ns", name },
      spec: {
        accessModes: ["ReadWriteOnce"],
        resources: { requests: storage ? { storage } : ({} as Record<string, string>) },
      },
    });
    assert.equal(await claims.exists("ns", "c"), false);
    await claims.create(claim("c", "1Gi"));
    assert.equal(await claims.exists("ns", "c"), true);
    await assert.rejects(claims.create(claim("c", "1Gi")), (e: { status?: number }) => e.status === 409);
    await assert.rejects(claims.create(claim("d")), (e: { status?: number }) => e.status === 422);
  });

  test("GIVEN a Deployment whose selector does not match its template, or that restarts Never THEN it is a 422 naming the field", async () => {
    const { workloads } = await clientsFor(fake);
    await assert.rejects(
      workloads.createDeployment(deployment({ a: "1" }, { a: "2" })),
      (e: Error & { status?: number }) => e.status === 422 && /selector/.test(e.message),
    );
    const never = deployment({ a: "1" }, { a: "1" });
    never.spec.template.spec.restartPolicy = "Never";
    await assert.rejects(workloads.createDeployment(never), /restartPolicy|Unsupported value/);
  });
});
