/**
 * The daemon reads each CnvrgApp's own bucket (its `cp-object-storage` Secret), with no `--bucket` at all: the
 * status API, the metrics and the request watcher see every installation's backups where its CronJobs write them.
 * Fake API server (CnvrgApps, CronJobs, Secrets), two real radosgw buckets.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Daemon } from "../../src/daemon/daemon.js";
import { BackupStore } from "../../src/storage/backup-store.js";
import { layout } from "../../src/storage/layout.js";
import { openBucket } from "../../src/storage/open-store.js";
import { serializeStatefile } from "../../src/storage/statefile.js";
import { cnvrgApp, cnvrgStorageSecret } from "../fakes/cnvrgapps.js";
import { FakeKubeApiServer } from "../fakes/kube-apiserver.js";
import { capturedLogger, eventually, type CapturedLogger } from "../fakes/kube-clients.js";
import { createBucket, s3Env, testServers, uniqueName, type TestServers } from "../harness/index.js";
import { statefile } from "../support/entries.js";
import { objectsOf, prefixOf } from "../support/raw-bucket.js";

const TOKEN = "target-buckets-token-0123456789";

describe("daemon: each CnvrgApp's own bucket (fake API server + radosgw)", () => {
  let servers: TestServers;
  let fake: FakeKubeApiServer;
  let daemon: Daemon;
  let base: string;
  let log: CapturedLogger;
  const stores: Record<string, BackupStore> = {};

  before(async () => {
    servers = await testServers();
    fake = await new FakeKubeApiServer().start();
    for (const [namespace, name] of [
      ["team-a", "app"],
      ["team-b", "app"],
      ["team-c", "app"],
    ] as const) {
      fake.put("cnvrgapps", cnvrgApp(namespace, name));
      if (namespace === "team-c") continue; // its bucket Secret is missing
      const bucket = uniqueName(namespace);
      await createBucket(servers.s3, bucket);
      fake.putSecret(namespace, "cp-object-storage", cnvrgStorageSecret(servers.s3, bucket));
      const { store, prefix } = openBucket(`s3://${bucket}/capsule`, {}, s3Env(servers.s3));
      stores[namespace] = new BackupStore(store, prefix);
      const s = statefile({
        cluster: `${namespace}.${name}`,
        target: "postgresql",
        at: new Date().toISOString(),
      });
      await store.put(layout.statefileKey(prefix, s), serializeStatefile(s));
    }
    log = capturedLogger("daemon");
    daemon = new Daemon({
      kube: { kubeconfig: await fake.kubeconfigFile(), requestTimeoutMs: 2000 },
      listen: { host: "127.0.0.1", port: 0 },
      token: TOKEN,
      allowRequests: true,
      leaderElection: false,
      lease: { name: "capsule-leader", namespace: "capsule-system" },
      identity: "test",
      resyncMs: 60_000,
      debounceMs: 10,
      bucketRefreshMs: 200,
      requestPollMs: 100,
      processMetrics: false,
      log,
    });
    base = `http://127.0.0.1:${(await daemon.start()).port}`;
  });
  after(async () => {
    await daemon.stop();
    await fake.close();
  });

  const get = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(`${base}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${TOKEN}`, ...(init.headers as Record<string, string>) },
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };

  test("GIVEN two apps with their own buckets and no --bucket WHEN the API is asked THEN each app's backups come from its bucket", async () => {
    await eventually(
      async () => {
        const { json } = await get("/api/v1/clusters");
        const names = (json["items"] as Array<{ cluster: string }> | undefined)?.map((c) => c.cluster) ?? [];
        return names.includes("team-a.app") && names.includes("team-b.app");
      },
      15_000,
      "both clusters listed",
    );
    for (const ns of ["team-a", "team-b"]) {
      const { status, json } = await get(`/api/v1/clusters/${ns}.app/backups`);
      assert.equal(status, 200);
      assert.equal(json["total"], 1, ns);
    }
    // The metrics follow the monitor's refresh, which reads the buckets the CronJobs name.
    const success = (cluster: string) =>
      `capsule_backup_last_success_timestamp_seconds{cluster="${cluster}",target="postgresql"`;
    await eventually(
      async () => {
        const text = await (
          await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })
        ).text();
        return text.includes(success("team-a.app")) && text.includes(success("team-b.app"));
      },
      15_000,
      "both clusters' backups in /metrics",
    );
  });

  test("GIVEN an app whose bucket Secret is missing WHEN the buckets are read THEN it is logged once and the daemon stays ready", async () => {
    await eventually(
      () => log.has("target bucket not resolved; its backups are not read"),
      10_000,
      "the warning",
    );
    const problems = log.lines.filter(
      (l) => l["msg"] === "target bucket not resolved; its backups are not read",
    );
    assert.equal(problems.length, 1, "once, not every refresh");
    assert.match(String(problems[0]?.["problem"]), /team-c\/cp-object-storage/);
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200);
  });

  test("GIVEN a backup request for app B through the API WHEN filed THEN it lands in B's bucket and B's watcher runs it as a Job", async () => {
    const { status, json } = await get("/api/v1/clusters/team-b.app/backups", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ target: "postgresql", requestedBy: "ops" }),
    });
    assert.equal(status, 202, JSON.stringify(json));
    const id = String(json["requestId"]);
    const b = stores["team-b"]!;
    assert.ok(
      await objectsOf(b).head(layout.requestKey(prefixOf(b), "team-b.app", id)),
      "filed in B's bucket",
    );
    const a = stores["team-a"]!;
    assert.equal(await objectsOf(a).head(layout.requestKey(prefixOf(a), "team-b.app", id)), undefined);
    await eventually(
      () => fake.list("jobs", "team-b").length === 1,
      15_000,
      "a Job in team-b from B's request",
    );
    assert.equal(fake.list("jobs", "team-a").length, 0);
  });
});
