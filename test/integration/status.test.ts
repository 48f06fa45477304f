/**
 * The status HTTP API over a real S3 server (radosgw) holding real statefiles — good, failed, abandoned and corrupt
 * ones — written through the BackupStore, exactly as `capsule run` writes them.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { Daemon } from "../../src/daemon/daemon.js";
import { BackupStore } from "../../src/storage/backup-store.js";
import type { BackupRef } from "../../src/domain/backup.js";
import { openBucket } from "../../src/storage/open-store.js";
import { capturedLogger, eventually } from "../fakes/kube-clients.js";
import { s3Env, testServers, uniqueName, type TestServers } from "../harness/index.js";
import { fillStatusBucket } from "../support/status-bucket.js";
import { objectsOf } from "../support/raw-bucket.js";

const TOKEN = "status-test-token-0123456789";
const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
  version: string;
};

describe("status API (radosgw)", () => {
  let servers: TestServers;
  let store: BackupStore;
  let daemon: Daemon;
  let base: string;
  const bodies: string[] = [];
  let refs: { pg1: BackupRef; pg2: BackupRef; redis: BackupRef; failed: BackupRef };
  let corruptKey = "";

  before(async () => {
    servers = await testServers();
    ({ store, refs, corruptKey } = await fillStatusBucket(servers));

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
    const health = await get("/healthz", null);
    assert.equal(health.status, 200);
    // A test run is a source tree: no build stamp, so commit and date say "dev".
    assert.deepEqual(health.json, {
      status: "ok",
      version: pkg.version,
      commit: "dev",
      date: "dev",
      node: process.version,
    });
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
    assert.match(
      text,
      new RegExp(`capsule_backup_consecutive_failures\\{${pg}\\} 1`),
      "the failed run is newest",
    );
    assert.match(
      text,
      new RegExp(`capsule_backup_consecutive_failures\\{${redis}\\} 0`),
      "abandoned before success",
    );
    // Two scheduled pg runs a moment apart: their gap is the interval (the failed run was manual, so it is not one).
    const interval = new RegExp(`capsule_backup_expected_interval_seconds\\{${pg}\\} ([\\d.e-]+)`).exec(text);
    assert.ok(
      interval?.[1] !== undefined && Number(interval[1]) > 0 && Number(interval[1]) < 600,
      interval?.[0],
    );
    assert.ok(
      text.includes(
        `capsule_build_info{version="${pkg.version}",commit="dev",date="dev",node="${process.version}"} 1`,
      ),
      "capsule_build_info carries version, commit, date and node",
    );
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
    const filed = JSON.parse((await (await objectsOf(store).get(key)).toArray()).join("")) as Record<
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
