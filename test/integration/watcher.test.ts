/**
 * The S3 request watcher against a real S3 server (radosgw, whose conditional writes make "exactly once" possible)
 * and the fake API server (where the Jobs land).
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import type { CronJobManifest } from "../../src/compiler/cronjob.js";
import { Daemon } from "../../src/daemon/daemon.js";
import { REQUEST_ENV } from "../../src/plan/run-contract.js";
import { REQUEST_ANNOTATIONS } from "../../src/requests/job.js";
import { signRequest, type RequestOutcome } from "../../src/requests/request.js";
import { RequestWatcher, type RestorePolicy } from "../../src/requests/watcher.js";
import { backupCronJobs, desiredState } from "../../src/reconciler/desired.js";
import { BackupStore } from "../../src/storage/backup-store.js";
import { layout } from "../../src/storage/layout.js";
import { getBytes } from "../../src/storage/object-store.js";
import { openBucket } from "../../src/storage/open-store.js";
import { serializeStatefile } from "../../src/storage/statefile.js";
import { cnvrgApp } from "../fakes/cnvrgapps.js";
import { FakeKubeApiServer } from "../fakes/kube-apiserver.js";
import { capturedLogger, clientsFor, eventually } from "../fakes/kube-clients.js";
import { createBucket, s3Env, testServers, uniqueName, type TestServers } from "../harness/index.js";
import { statefile } from "../support/entries.js";
import { objectsOf, prefixOf } from "../support/raw-bucket.js";

const CLUSTER = "cnvrg.app";
const HMAC_KEY = "restore-signing-key-for-tests";

describe("request watcher (radosgw + fake API server)", () => {
  let servers: TestServers;
  let fake: FakeKubeApiServer;
  let store: BackupStore;
  let targets = new Map<string, CronJobManifest>();

  before(async () => {
    servers = await testServers();
    fake = await new FakeKubeApiServer().start();
    targets = backupCronJobs(
      desiredState([cnvrgApp("cnvrg", "app", { engines: ["postgresql", "redis"] })], []).cronJobs,
    );
  });
  beforeEach(async () => {
    // A fresh bucket per test: each test's requests are its own.
    const bucket = uniqueName("watcher");
    await createBucket(servers.s3, bucket);
    const { store: objects, prefix } = openBucket(`s3://${bucket}/capsule`, {}, s3Env(servers.s3));
    store = new BackupStore(objects, prefix);
    fake.resetCounters();
  });
  after(async () => {
    await fake.close();
  });

  async function watcher(identity: string, restore?: RestorePolicy): Promise<RequestWatcher> {
    const { workloads } = await clientsFor(fake);
    return new RequestWatcher({
      store,
      workloads,
      clusters: () => [CLUSTER],
      cronJobOf: (cluster, target) => targets.get(`${cluster}/${target}`),
      identity,
      log: capturedLogger(identity),
      ...(restore && { restore }),
    });
  }

  async function file(id: string, body: unknown): Promise<void> {
    await objectsOf(store).put(
      layout.requestKey(prefixOf(store), CLUSTER, id),
      typeof body === "string" ? body : JSON.stringify(body),
    );
  }

  async function outcome(id: string): Promise<RequestOutcome | undefined> {
    const key = layout.outcomeKey(prefixOf(store), CLUSTER, id);
    if (!(await objectsOf(store).head(key))) return undefined;
    return JSON.parse((await getBytes(objectsOf(store), key)).toString()) as RequestOutcome;
  }

  const backup = (target = "postgresql") => ({
    action: "backup",
    target,
    requestedBy: "alice@example.com",
    requestedAt: new Date().toISOString(),
  });

  test("GIVEN one request and two watchers polling at once WHEN they poll THEN exactly one Job is created, marked with the request", async () => {
    await file("req-1", backup());
    const [a, b] = [await watcher("replica-a"), await watcher("replica-b")];
    await Promise.all([a.pollOnce(), b.pollOnce(), a.pollOnce(), b.pollOnce()]);
    assert.equal(fake.writeCount({ verb: "create", resource: "jobs" }), 1);
    const result = await outcome("req-1");
    assert.equal(result?.state, "accepted");
    assert.equal(result?.job?.created, true);
    const job = fake.get("jobs", "cnvrg", result?.job?.name ?? "");
    assert.ok(job, "the Job exists");
    const meta = job["metadata"] as { annotations: Record<string, string>; labels: Record<string, string> };
    assert.equal(meta.annotations[REQUEST_ANNOTATIONS.requestId], "req-1");
    assert.equal(meta.labels["app.kubernetes.io/managed-by"], "capsule");
    const container = (
      job["spec"] as {
        template: {
          spec: { containers: Array<{ args: string[]; env: Array<{ name: string; value?: string }> }> };
        };
      }
    ).template.spec.containers[0];
    assert.deepEqual(container?.args, ["run", "--cluster", CLUSTER, "--target", "postgresql"]);
    assert.equal(container?.env.find((e) => e.name === REQUEST_ENV.requestId)?.value, "req-1");
    assert.ok((result?.job?.name.length ?? 99) <= 63);
  });

  test("GIVEN a running request Job WHEN it completes and its statefile records the request THEN the outcome is succeeded with the backup id; restarts create nothing", async () => {
    await file("req-2", backup());
    const a = await watcher("replica-a");
    await a.pollOnce();
    const accepted = await outcome("req-2");
    await a.pollOnce();
    assert.equal((await outcome("req-2"))?.state, "accepted", "still running");
    // What `capsule run` in the Job writes: a statefile with trigger.requestId.
    const s = statefile({
      cluster: CLUSTER,
      target: "postgresql",
      trigger: { type: "request", requestId: "req-2" },
    });
    await objectsOf(store).put(layout.statefileKey(prefixOf(store), s), serializeStatefile(s));
    fake.finishJob("cnvrg", accepted?.job?.name ?? "", "Complete");
    await a.pollOnce();
    const done = await outcome("req-2");
    assert.equal(done?.state, "succeeded");
    assert.equal(done?.backupId, s.backupId);
    assert.ok(done?.finishedAt);
    // A restarted daemon (a new watcher, nothing in memory) and the other replica: no second Job.
    fake.resetCounters();
    await Promise.all([
      (await watcher("replica-a-restarted")).pollOnce(),
      (await watcher("replica-b")).pollOnce(),
    ]);
    assert.equal(fake.writeCount(), 0);
  });

  test("GIVEN a request Job that fails WHEN polled THEN the outcome is failed with the reason", async () => {
    await file("req-3", backup("redis"));
    const a = await watcher("replica-a");
    await a.pollOnce();
    fake.finishJob("cnvrg", (await outcome("req-3"))?.job?.name ?? "", "Failed");
    await a.pollOnce();
    const result = await outcome("req-3");
    assert.equal(result?.state, "failed");
    assert.match(result?.reason ?? "", /Job cnvrg\/capsule-cnvrg-app-redis-[0-9a-f]{10} failed/);
  });

  test("GIVEN malformed and unknown-target requests among a good one WHEN polled THEN each bad one gets a rejection and the good one runs", async () => {
    await file("bad-json", "{ nope");
    await file("bad-action", { ...backup(), action: "drop-database" });
    await file("no-target", { ...backup(), target: "mysql" });
    await file("no-requester", {
      action: "backup",
      target: "postgresql",
      requestedAt: new Date().toISOString(),
    });
    await file("too-big", { ...backup(), requestedBy: "x".repeat(70_000) });
    await file("good", backup());
    const a = await watcher("replica-a");
    await a.pollOnce();
    const reasons = Object.fromEntries(
      await Promise.all(
        ["bad-json", "bad-action", "no-target", "no-requester", "too-big"].map(async (id) => {
          const o = await outcome(id);
          assert.equal(o?.state, "rejected", id);
          return [id, o?.reason] as const;
        }),
      ),
    );
    assert.match(reasons["bad-json"] ?? "", /not valid JSON/);
    assert.match(reasons["bad-action"] ?? "", /action must be "backup" or "restore" \(got "drop-database"\)/);
    assert.match(reasons["no-target"] ?? "", /cluster cnvrg\.app has no target mysql/);
    assert.match(reasons["no-requester"] ?? "", /requestedBy must be/);
    assert.match(reasons["too-big"] ?? "", /at most 65536/);
    assert.equal((await outcome("good"))?.state, "accepted");
    assert.equal(fake.writeCount({ verb: "create", resource: "jobs" }), 1);
  });

  test("GIVEN restore requests WHEN disabled, unsigned or wrongly signed THEN they are refused; a signed one runs once as a never-retried restore Job", async () => {
    const backupId = "postgresql-20260101T000000Z-abc123";
    const restore = (id: string, key?: string) => {
      const body = {
        action: "restore" as const,
        target: "postgresql",
        backupId,
        requestedBy: "ops",
        requestedAt: new Date().toISOString(),
      };
      return { ...body, signature: key ? signRequest(key, CLUSTER, id, body) : "0".repeat(64) };
    };
    await file("restore-off", restore("restore-off", HMAC_KEY));
    await (await watcher("a")).pollOnce();
    assert.match(
      (await outcome("restore-off"))?.reason ?? "",
      /restore requests through the bucket are disabled/,
    );

    const enabled = await watcher("b", { enabled: true, hmacKey: HMAC_KEY });
    await file("restore-unsigned", restore("restore-unsigned"));
    await file("restore-other-key", restore("restore-other-key", "some-other-key"));
    await file("restore-replayed", restore("restore-original-id", HMAC_KEY));
    await file("restore-signed", restore("restore-signed", HMAC_KEY));
    await enabled.pollOnce();
    for (const id of ["restore-unsigned", "restore-other-key", "restore-replayed"]) {
      const o = await outcome(id);
      assert.equal(o?.state, "rejected");
      assert.match(o?.reason ?? "", /signature does not match/, id);
    }
    const accepted = await outcome("restore-signed");
    assert.equal(accepted?.state, "accepted");
    assert.equal(accepted?.backupId, backupId);
    assert.equal(fake.writeCount({ verb: "create", resource: "jobs" }), 1, "only the signed request runs");
    const job = fake.get("jobs", "cnvrg", accepted?.job?.name ?? "") as {
      spec: { backoffLimit: number; template: { spec: { containers: Array<{ args: string[] }> } } };
    };
    assert.deepEqual(job.spec.template.spec.containers[0]?.args, [
      "run",
      "--cluster",
      CLUSTER,
      "--target",
      "postgresql",
      "--restore",
      backupId,
    ]);
    assert.equal(job.spec.backoffLimit, 0, "a restore is never retried behind the operator's back");

    // What `capsule run --restore` in the Job writes: the restore, with the request id, in the backup's statefile.
    const s = statefile({
      cluster: CLUSTER,
      target: "postgresql",
      backupId,
      restores: [
        {
          at: new Date().toISOString(),
          to: "postgresql://db",
          result: "failed",
          message: "disk full",
          requestId: "restore-signed",
        },
      ],
    });
    await objectsOf(store).put(layout.statefileKey(prefixOf(store), s), serializeStatefile(s));
    fake.finishJob("cnvrg", accepted?.job?.name ?? "", "Failed");
    await enabled.pollOnce();
    const done = await outcome("restore-signed");
    assert.equal(done?.state, "failed");
    assert.match(done?.reason ?? "", /restore failed: disk full/);
  });

  test("GIVEN an accepted signed restore WHEN its request is rewritten before the Job is made THEN nothing runs", async () => {
    const backupId = "postgresql-20260101T000000Z-abc123";
    const body = {
      action: "restore" as const,
      target: "postgresql",
      backupId,
      requestedBy: "ops",
      requestedAt: new Date().toISOString(),
    };
    await file("restore-swapped", {
      ...body,
      signature: signRequest(HMAC_KEY, CLUSTER, "restore-swapped", body),
    });
    const orphan: RequestOutcome = {
      outcomeVersion: 1,
      requestId: "restore-swapped",
      cluster: CLUSTER,
      action: "restore",
      target: "postgresql",
      backupId: "postgresql-20250101T000000Z-0ld0ld",
      state: "accepted",
      job: { namespace: "cnvrg", name: "capsule-cnvrg-app-postgresql-0123456789", created: false },
      handledBy: "dead-replica",
      acceptedAt: new Date().toISOString(),
      updatedAt: new Date().toISOString(),
    };
    await objectsOf(store).put(
      layout.outcomeKey(prefixOf(store), CLUSTER, "restore-swapped"),
      JSON.stringify(orphan),
    );
    await (await watcher("c", { enabled: true, hmacKey: HMAC_KEY })).pollOnce();
    const done = await outcome("restore-swapped");
    assert.equal(done?.state, "failed");
    assert.match(done?.reason ?? "", /changed after it was accepted/);
    assert.equal(fake.writeCount({ verb: "create", resource: "jobs" }), 0);
  });

  test("GIVEN a watcher that died after accepting but before creating the Job WHEN another polls THEN it creates the Job once", async () => {
    await file("req-orphan", backup());
    const name = "capsule-cnvrg-app-postgresql-0123456789";
    const orphan: RequestOutcome = {
      outcomeVersion: 1,
      requestId: "req-orphan",
      cluster: CLUSTER,
      action: "backup",
      target: "postgresql",
      state: "accepted",
      job: { namespace: "cnvrg", name, created: false },
      handledBy: "dead-replica",
      acceptedAt: new Date().toISOString(),
      updatedAt: new Date().toISOString(),
    };
    await objectsOf(store).put(
      layout.outcomeKey(prefixOf(store), CLUSTER, "req-orphan"),
      JSON.stringify(orphan),
    );
    const b = await watcher("replica-b");
    await b.pollOnce();
    await b.pollOnce();
    assert.equal(fake.writeCount({ verb: "create", resource: "jobs" }), 1);
    assert.equal((await outcome("req-orphan"))?.job?.created, true);
  });

  test("GIVEN the daemon with a bucket WHEN a backup is requested through the status API THEN its leader runs it as a Job", async () => {
    fake.put("cnvrgapps", cnvrgApp("cnvrg", "app", { engines: ["postgresql", "redis"] }));
    process.env["TEST_STATUS_TOKEN"] = "daemon-test-token-0123456789";
    const daemon = new Daemon({
      kube: { kubeconfig: await fake.kubeconfigFile(), requestTimeoutMs: 2000 },
      store,
      listen: { host: "127.0.0.1", port: 0 },
      token: "daemon-test-token-0123456789",
      allowRequests: true,
      identity: "solo",
      lease: { name: "capsule-leader", namespace: "capsule-system", retryPeriodMs: 100 },
      requestPollMs: 100,
      bucketRefreshMs: 60_000,
      processMetrics: false,
      log: capturedLogger("daemon"),
    });
    const { port } = await daemon.start();
    try {
      await eventually(
        () => daemon.isLeader && daemon.requestWatcher !== undefined,
        10_000,
        "leader with a watcher",
      );
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/clusters/${CLUSTER}/backups`, {
        method: "POST",
        headers: { authorization: "Bearer daemon-test-token-0123456789", "content-type": "application/json" },
        body: JSON.stringify({ target: "redis", requestedBy: "bob" }),
      });
      assert.equal(res.status, 202);
      const { requestId } = (await res.json()) as { requestId: string };
      await eventually(async () => (await outcome(requestId))?.job?.created === true, 10_000, "the Job");
      const unknown = await fetch(`http://127.0.0.1:${port}/api/v1/clusters/${CLUSTER}/backups`, {
        method: "POST",
        headers: { authorization: "Bearer daemon-test-token-0123456789", "content-type": "application/json" },
        body: JSON.stringify({ target: "mysql" }),
      });
      assert.equal(unknown.status, 404, "an unknown target is refused at once");
    } finally {
      await daemon.stop();
    }
  });
});
