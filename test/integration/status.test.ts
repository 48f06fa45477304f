/**
 * The status HTTP API over a real S3 server (radosgw) holding real statefiles — good, failed, abandoned and corrupt
 * ones — written through the BackupStore, exactly as `capsule run` writes them.
 */
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { Daemon } from "../../src/daemon/daemon.js";
import { BackupStore } from "../../src/storage/backup-store.js";
import { type BackupRef, layout } from "../../src/storage/layout.js";
import { openBucket } from "../../src/storage/open-store.js";
import { serializeStatefile } from "../../src/storage/statefile.js";
import { capturedLogger, eventually } from "../fakes/kube-clients.js";
import { createBucket, s3Env, testServers, uniqueName, type TestServers } from "../harness/index.js";
import { statefile } from "../support/entries.js";

const TOKEN = "status-test-token-0123456789";

async function goodBackup(
  store: BackupStore,
  cluster: string,
  target: string,
  engine: "postgresql" | "redis",
  bytes: string,
) {
  const run = await store.begin({
    cluster,
    target,
    engine,
    trigger: { type: "schedule" },
    source: { host: "db", port: 5432 },
    tool: { capsule: "test" },
  });
  const uploaded = await run.uploadArtifact("dump.bin", Readable.from([Buffer.from(bytes)]));
  await run.commit({
    artifact: {
      name: "dump.bin",
      format: "test",
      compression: "none",
      ...uploaded,
    },
  });
  return run.ref;
}

describe("status API (radosgw)", () => {
  let servers: TestServers;
  let store: BackupStore;
  let daemon: Daemon;
  let base: string;
  const bodies: string[] = [];
  const refs: { pg1: BackupRef; pg2: BackupRef; redis: BackupRef; failed: BackupRef } = {} as never;
  let corruptKey = "";

  before(async () => {
    servers = await testServers();
    const bucket = uniqueName("status");
    await createBucket(servers.s3, bucket);
    const { store: objects, prefix } = openBucket(`s3://${bucket}/capsule`, {}, s3Env(servers.s3));
    store = new BackupStore(objects, prefix);
    refs.pg1 = await goodBackup(store, "cnvrg.app", "postgresql", "postgresql", "first");
    refs.pg2 = await goodBackup(store, "cnvrg.app", "postgresql", "postgresql", "second, longer");
    refs.redis = await goodBackup(store, "cnvrg.app", "redis", "redis", "rdb");
    // Drill results: the newest redis backup proven; an older postgres backup failed its drill, the newest unproven.
    await store.update(
      refs.redis,
      (s) => (s.verification = { status: "verified", at: "2026-11-20T00:00:00.000Z", method: "t" }),
    );
    await store.update(
      refs.pg1,
      (s) => (s.verification = { status: "failed", at: "2026-11-21T00:00:00.000Z", method: "t" }),
    );
    const failing = await store.begin({
      cluster: "cnvrg.app",
      target: "postgresql",
      engine: "postgresql",
      trigger: { type: "manual" },
      source: {},
      tool: {},
    });
    await failing.fail(
      "dumping",
      new Error(`pg_dump: connection refused (password ${servers.s3.secretAccessKey})`),
    );
    refs.failed = failing.ref;
    const abandoned = statefile({
      cluster: "cnvrg.app",
      target: "redis",
      engine: "redis",
      status: "running",
      at: "2026-01-01T00:00:00.000Z",
    });
    await objects.put(layout.statefileKey(prefix, abandoned), serializeStatefile(abandoned));
    const corrupt = {
      cluster: "cnvrg.app",
      engine: "postgresql" as const,
      backupId: "postgresql-20260101T000000Z-bad000",
    };
    corruptKey = layout.statefileKey(prefix, corrupt);
    await objects.put(corruptKey, "{ not json");
    await goodBackup(store, "other.team", "postgresql", "postgresql", "x");

    daemon = new Daemon({
      statusOnly: true,
      store,
      listen: { host: "127.0.0.1", port: 0 },
      token: TOKEN,
      allowRequests: true,
      lease: { name: "", namespace: "" },
      identity: "test",
      processMetrics: false,
      log: capturedLogger(),
    });
    const address = await daemon.start();
    base = `http://127.0.0.1:${address.port}`;
  });
  after(async () => {
    await daemon.stop();
  });

  async function get(path: string, token: string | null = TOKEN, init: RequestInit = {}) {
    const res = await fetch(`${base}${path}`, {
      ...init,
      headers: {
        ...(token && { authorization: `Bearer ${token}` }),
        ...(init.headers as Record<string, string>),
      },
    });
    const text = await res.text();
    bodies.push(text);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json: json as Record<string, unknown> };
  }

  test("GIVEN the daemon WHEN probed THEN /healthz is 200 without a token and /readyz turns 200 after the bucket check", async () => {
    assert.equal((await get("/healthz", null)).status, 200);
    await eventually(async () => (await get("/readyz", null)).status === 200, 10_000, "/readyz");
    const ready = await get("/readyz", null);
    assert.deepEqual(ready.json, { ready: true, checks: { bucket: "ok" } });
  });

  test("GIVEN a token WHEN the API is called without it or with a wrong one THEN 401 with a JSON error", async () => {
    for (const token of [null, "wrong-token-wrong-token"]) {
      const res = await get("/api/v1/clusters", token);
      assert.equal(res.status, 401);
      assert.equal(res.headers.get("www-authenticate"), 'Bearer realm="capsule"');
      assert.deepEqual(res.json, {
        error: { code: "unauthorized", message: "a valid bearer token is required" },
      });
    }
    assert.equal((await get("/metrics", null)).status, 401);
  });

  test("GIVEN statefiles of two clusters WHEN /api/v1/clusters THEN both are listed", async () => {
    const res = await get("/api/v1/clusters");
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, { items: [{ cluster: "cnvrg.app" }, { cluster: "other.team" }] });
  });

  test("GIVEN good, failed, abandoned and corrupt statefiles WHEN a cluster's backups are listed THEN all come back newest first with their state", async () => {
    const res = await get("/api/v1/clusters/cnvrg.app/backups");
    assert.equal(res.status, 200);
    const items = res.json["items"] as Array<Record<string, unknown>>;
    assert.equal(res.json["total"], 6);
    const states = items.map((i) => i["state"]).sort();
    assert.deepEqual(states, ["abandoned", "corrupt", "failed", "succeeded", "succeeded", "succeeded"]);
    const corrupt = items.find((i) => i["state"] === "corrupt");
    assert.equal(corrupt?.["key"], corruptKey);
    assert.match(String(corrupt?.["problem"]), /not valid JSON/);
    const newest = items[0];
    assert.equal(newest?.["state"], "failed", "the failed run began last");
    assert.doesNotMatch(String(newest?.["error"]), new RegExp(servers.s3.secretAccessKey));
  });

  test("GIVEN filters WHEN listed THEN only matching backups come back; bad filters are a 400", async () => {
    const ok = await get("/api/v1/clusters/cnvrg.app/backups?status=succeeded&engine=postgresql");
    assert.deepEqual(
      (ok.json["items"] as Array<{ backupId: string }>).map((i) => i.backupId),
      [refs.pg2.backupId, refs.pg1.backupId],
    );
    const limited = await get("/api/v1/clusters/cnvrg.app/backups?status=succeeded&limit=1");
    assert.equal((limited.json["items"] as unknown[]).length, 1);
    assert.equal(limited.json["total"], 3);
    for (const [query, message] of [
      ["status=bogus", /status must be one of/],
      ["engine=mysql", /engine must be one of/],
      ["limit=0", /limit must be an integer/],
      ["color=red", /unknown query parameter "color"/],
    ] as const) {
      const res = await get(`/api/v1/clusters/cnvrg.app/backups?${query}`);
      assert.equal(res.status, 400, query);
      assert.match(String((res.json["error"] as { message: string }).message), message);
    }
  });

  test("GIVEN a backup id WHEN fetched THEN its statefile comes back; unknown is 404, malformed is 400", async () => {
    const res = await get(`/api/v1/clusters/cnvrg.app/backups/${refs.pg2.backupId}`);
    assert.equal(res.status, 200);
    assert.equal(res.json["state"], "succeeded");
    assert.equal(res.json["sizeBytes"], Buffer.byteLength("second, longer"));
    assert.equal((res.json["statefile"] as { backupId: string }).backupId, refs.pg2.backupId);
    const missing = await get("/api/v1/clusters/cnvrg.app/backups/postgresql-20200101T000000Z-000000");
    assert.equal(missing.status, 404);
    assert.equal((missing.json["error"] as { code: string }).code, "not_found");
    assert.equal((await get("/api/v1/clusters/cnvrg.app/backups/not-an-id")).status, 400);
    assert.equal((await get("/api/v1/clusters/..%2Fescape/backups")).status, 400);
    assert.equal((await get("/api/v1/nothing")).status, 404);
    const wrongMethod = await get("/api/v1/clusters", TOKEN, { method: "DELETE" });
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.headers.get("allow"), "GET");
  });

  test("GIVEN statefiles WHEN /metrics is scraped THEN per-target last success, size, duration and failures are there", async () => {
    await eventually(
      async () => /capsule_backup_last_success_timestamp_seconds\{/.test((await get("/metrics")).text),
      10_000,
      "metrics",
    );
    const text = (await get("/metrics")).text;
    assert.match(
      text,
      /capsule_backup_last_success_size_bytes\{cluster="cnvrg\.app",target="postgresql",engine="postgresql"\} 14/,
    );
    assert.match(
      text,
      /capsule_backup_last_success_duration_seconds\{cluster="cnvrg\.app",target="postgresql",engine="postgresql"\} [\d.]+/,
    );
    assert.match(
      text,
      /capsule_backup_failed_runs\{cluster="cnvrg\.app",target="postgresql",engine="postgresql"\} 1/,
    );
    assert.match(text, /capsule_backup_failed_runs\{cluster="cnvrg\.app",target="redis",engine="redis"\} 1/);
    assert.match(text, /capsule_backup_corrupt_statefiles\{cluster="cnvrg\.app"\} 1/);
    const pg = 'cluster="cnvrg\\.app",target="postgresql",engine="postgresql"';
    const redis = 'cluster="cnvrg\\.app",target="redis",engine="redis"';
    assert.match(text, new RegExp(`capsule_verification_last_success\\{${redis}\\} 1`));
    assert.match(text, new RegExp(`capsule_backup_newest_verified\\{${redis}\\} 1`));
    assert.match(
      text,
      new RegExp(
        `capsule_verification_last_timestamp_seconds\\{${pg}\\} ${Date.parse("2026-11-21T00:00:00Z") / 1000}`,
      ),
    );
    assert.match(text, new RegExp(`capsule_verification_last_success\\{${pg}\\} 0`));
    assert.match(text, new RegExp(`capsule_backup_newest_verified\\{${pg}\\} 0`));
    assert.match(text, /capsule_build_info\{version="[^"]+",commit="[^"]+",node="v20[^"]*"\} 1/);
  });

  test("GIVEN POST …/backups WHEN valid THEN a request object is filed for the watcher; bad bodies are refused", async () => {
    const post = (body: string, type = "application/json") =>
      get("/api/v1/clusters/cnvrg.app/backups", TOKEN, {
        method: "POST",
        body,
        headers: { "content-type": type },
      });
    const res = await post(JSON.stringify({ target: "postgresql", requestedBy: "alice" }));
    assert.equal(res.status, 202, res.text);
    const key = String(res.json["key"]);
    assert.match(key, /^capsule\/cnvrg\.app\/requests\/req-\d{8}T\d{6}Z-[0-9a-f]{8}\.json$/);
    const filed = JSON.parse((await (await store.objects.get(key)).toArray()).join("")) as Record<
      string,
      unknown
    >;
    assert.equal(filed["action"], "backup");
    assert.equal(filed["target"], "postgresql");
    assert.equal(filed["requestedBy"], "alice");
    assert.equal((await post("target=x", "text/plain")).status, 415);
    assert.equal((await post("{")).status, 400);
    assert.equal((await post(JSON.stringify({ target: "Bad Name" }))).status, 400);
    assert.equal((await post(JSON.stringify({ target: "pg", extra: 1 }))).status, 400);
    assert.equal((await post(JSON.stringify({ target: "pg", requestedBy: "x".repeat(20_000) }))).status, 413);
  });

  test("GIVEN every response so far WHEN searched THEN no secret appears", () => {
    for (const body of bodies) {
      assert.ok(!body.includes(servers.s3.secretAccessKey), body.slice(0, 200));
      assert.ok(!body.includes(TOKEN), "the token is never echoed");
    }
  });

  test("GIVEN a bucket that does not exist WHEN the API is called THEN a JSON 502 and /readyz 503", async () => {
    const { store: objects, prefix } = openBucket(
      `s3://${uniqueName("missing")}/capsule`,
      {},
      s3Env(servers.s3),
    );
    const broken = new Daemon({
      statusOnly: true,
      store: new BackupStore(objects, prefix),
      listen: { host: "127.0.0.1", port: 0 },
      lease: { name: "", namespace: "" },
      identity: "test",
      processMetrics: false,
      log: capturedLogger(),
    });
    const { port } = await broken.start();
    try {
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/clusters`);
      assert.equal(res.status, 502);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, "bucket_error");
      await eventually(
        async () => {
          const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
          const body = (await ready.json()) as { checks: { bucket: string } };
          return ready.status === 503 && body.checks.bucket.startsWith("failing");
        },
        10_000,
        "/readyz 503",
      );
    } finally {
      await broken.stop();
    }
  });
});
