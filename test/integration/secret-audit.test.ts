/**
 * The secret-leak audit (issue 9): every command and the daemon run with known secret values — in the environment,
 * in Kubernetes Secrets, right and wrong, on succeeding and failing paths — and none of those values (nor their
 * base64) may appear in anything capsule writes: stdout, stderr, log lines, statefiles, request outcomes, any other
 * object in the bucket, rendered YAML, or HTTP responses.
 *
 * Every text capsule produced is kept in `produced` with where it came from; the last test searches it all.
 */
import assert from "node:assert/strict";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { generateX25519Identity, identityToRecipient } from "age-encryption";
import { compileManifests } from "../../src/compiler/compile.js";
import { Daemon } from "../../src/daemon/daemon.js";
import { gatherPlans } from "../../src/runtime/gather-plans.js";
import { signRequest } from "../../src/requests/request.js";
import { RequestWatcher } from "../../src/requests/watcher.js";
import { openBackupStore } from "../../src/runtime/bucket.js";
import type { BackupStore } from "../../src/storage/backup-store.js";
import { getBytes } from "../../src/storage/object-store.js";
import { cnvrgApp, cnvrgStorageSecret } from "../fakes/cnvrgapps.js";
import { FakeElasticsearch } from "../fakes/elasticsearch.js";
import { FakeKubeApiServer } from "../fakes/kube-apiserver.js";
import { capturedLogger, clientsFor } from "../fakes/kube-clients.js";
import { createBucket, s3Env, testServers, uniqueName, type TestServers } from "../harness/index.js";
import { capsule } from "../support/cli.js";
import { writeHarnessPlan } from "../support/plan.js";
import { pgEnv, sql } from "../support/pg.js";
import { objectsOf, prefixOf } from "../support/raw-bucket.js";
import { layout } from "../../src/storage/layout.js";

const CLUSTER = "audit.app";

describe("secret-leak audit: no secret value in anything capsule writes", () => {
  let servers: TestServers;
  let es: FakeElasticsearch;
  let api: FakeKubeApiServer;
  let store: BackupStore;
  let bucket: string;
  let db: string;
  let env: Record<string, string>;
  /** Everything capsule produced, with where it came from. */
  const produced: Array<{ where: string; text: string }> = [];
  /** Secret values planted for this test (the harness' real ones are added in `before`). */
  const planted = {
    wrongPgPassword: "wrong-PG-pass-Qx7!bZ3$kL9",
    wrongS3Secret: "wrongS3SecretKeyZZ9aBcDeFgHiJkLmNoPqRsTu",
    redisPassword: "redis-pass-V4nQ2#wE8rT",
    esPassword: "es-pass-M3kX9%pL2sD",
    wrongEsPassword: "es-wrong-H8gF4&jK1zX",
    statusToken: "status-token-A9sD8fG7hJ6kL5",
    hmacKey: "hmac-key-P0oI9uY8tR7eW6q",
  };
  const secrets: string[] = Object.values(planted);

  async function run(label: string, args: string[], extraEnv: Record<string, string> = {}) {
    const result = await capsule(args, { ...env, ...extraEnv });
    produced.push(
      { where: `${label}: stdout`, text: result.stdout },
      { where: `${label}: stderr`, text: result.stderr },
    );
    return result;
  }

  before(async () => {
    servers = await testServers();
    secrets.push(servers.pg.password, servers.s3.secretAccessKey);
    bucket = uniqueName("audit");
    await createBucket(servers.s3, bucket);
    db = uniqueName("auditdb").replace(/-/g, "_");
    await sql(servers, "postgres", `CREATE DATABASE ${db}`);
    await sql(
      servers,
      db,
      "CREATE TABLE t (id int, s text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 300) g;",
    );
    es = await FakeElasticsearch.start({
      flavour: "8",
      user: { name: "elastic", password: planted.esPassword },
    });
    es.seed("docs", { mappings: { properties: { n: { type: "long" } } } }, [{ id: "1", source: { n: 1 } }]);
    api = await new FakeKubeApiServer().start();
    env = {
      ...s3Env(servers.s3),
      ...pgEnv(servers, db),
      CAPSULE_BUCKET: `s3://${bucket}/capsule`,
      CAPSULE_CLUSTER: CLUSTER,
    };
    store = openBackupStore({}, env);
  });

  after(async () => {
    await es.close();
    await api.close();
  });

  test("GIVEN right secrets WHEN every PostgreSQL admin command runs THEN they succeed", async () => {
    const created = await run("pg --create", ["pg", "--create"]);
    assert.equal(created.code, 0, created.stderr);
    const id = created.stdout.trim();
    for (const args of [
      ["pg", "--list"],
      ["pg", "--list", "-o", "json"],
      ["pg", "--describe", "--id", id, "-o", "yaml"],
      [
        "pg",
        "--download",
        "--id",
        id,
        "--to",
        path.join(await mkdtemp(path.join(tmpdir(), "audit-")), "dump"),
      ],
      ["pg", "--restore", "--id", id, "--to-database", `${db}_copy`, "--yes"],
      ["pg", "--verify", "--verify-server", "--id", id],
      ["pg", "--check"],
      ["pg", "--prune", "--keep-last", "5", "--dry-run"],
    ]) {
      const result = await run(args.join(" "), args);
      assert.equal(result.code, 0, `${args.join(" ")}: ${result.stderr}`);
    }
  });

  test("GIVEN an age identity WHEN an encrypted backup is made, restored and verified, and restored with a stranger's key THEN only the wrong key fails", async () => {
    const identity = await generateX25519Identity();
    const stranger = await generateX25519Identity();
    secrets.push(identity, stranger);
    const created = await run("pg --create --encrypt-to", [
      "pg",
      "--create",
      "--encrypt-to",
      await identityToRecipient(identity),
    ]);
    assert.equal(created.code, 0, created.stderr);
    const id = created.stdout.trim();
    const restored = await run(
      "encrypted restore",
      ["pg", "--restore", "--id", id, "--to-database", `${db}_age`, "--yes"],
      {
        CAPSULE_AGE_IDENTITY: identity,
      },
    );
    assert.equal(restored.code, 0, restored.stderr);
    const verified = await run("encrypted verify", ["pg", "--verify", "--verify-server", "--id", id], {
      CAPSULE_AGE_IDENTITY: identity,
    });
    assert.equal(verified.code, 0, verified.stderr);
    const refused = await run(
      "stranger's identity",
      ["pg", "--restore", "--id", id, "--to-database", `${db}_no`, "--yes"],
      {
        CAPSULE_AGE_IDENTITY: stranger,
      },
    );
    assert.equal(refused.code, 1);
    const broken = `${identity.slice(0, -3)}zzz`;
    secrets.push(broken);
    const malformed = await run(
      "malformed identity",
      ["pg", "--download", "--id", id, "--to", "/tmp/audit-x"],
      {
        CAPSULE_AGE_IDENTITY: broken,
      },
    );
    assert.equal(malformed.code, 1);
  });

  test("GIVEN wrong or unusable secrets WHEN commands fail THEN they fail (the audit checks what they said)", async () => {
    const failing: Array<[string, string[], Record<string, string>]> = [
      ["wrong PGPASSWORD", ["pg", "--create"], { PGPASSWORD: planted.wrongPgPassword }],
      [
        "unreachable pg",
        ["pg", "--create", "--host", "127.0.0.1", "--port", "1"],
        { PGPASSWORD: planted.wrongPgPassword },
      ],
      ["wrong S3 secret", ["pg", "--list"], { AWS_SECRET_ACCESS_KEY: planted.wrongS3Secret }],
      ["wrong S3 secret on create", ["pg", "--create"], { AWS_SECRET_ACCESS_KEY: planted.wrongS3Secret }],
      [
        "redis password refused",
        ["redis", "--create", "--host", servers.redis.host, "--port", String(servers.redis.port)],
        { REDISCLI_AUTH: planted.redisPassword },
      ],
      [
        "wrong ES password",
        ["es", "--create", "--url", es.url],
        { ES_USER: "elastic", ES_PASSWORD: planted.wrongEsPassword },
      ],
      ["bad bucket URL", ["pg", "--list", "--bucket", `s3://user:${planted.wrongS3Secret}@bucket/x`], {}],
    ];
    for (const [label, args, extra] of failing) {
      const result = await run(label, args, extra);
      assert.notEqual(result.code, 0, `${label} should fail: ${result.stdout}`);
    }
    const good = await run("es --create", ["es", "--create", "--url", es.url], {
      ES_USER: "elastic",
      ES_PASSWORD: planted.esPassword,
    });
    assert.equal(good.code, 0, good.stderr);
  });

  test("GIVEN a compiled plan WHEN rendered and its pod runs with a wrong password THEN the run fails and its statefile records why", async () => {
    const dir = await writeHarnessPlan(servers, {
      cluster: CLUSTER,
      bucket,
      targets: `    - name: pg
      engine: postgresql
      namespace: apps
      connection: { host: ${servers.pg.host}, port: ${servers.pg.port}, database: ${db} }
      credentials: { secretName: pg-creds }
      schedule: { period: 24h }
      retention: { keepLast: 2 }
`,
    });
    const rendered = await run("plan --dry-run", ["plan", "--dry-run", "--plans", dir]);
    assert.equal(rendered.code, 0, rendered.stderr);
    const installed = await run("install --dry-run", ["install", "--dry-run", "--secret", "pg-creds"]);
    assert.equal(installed.code, 0, installed.stderr);

    const cronJob = compileManifests((await gatherPlans({ plans: dir })).plans)[0]!;
    const container = cronJob.spec.jobTemplate.spec!.template.spec!.containers[0]!;
    const podEnv: Record<string, string> = {
      CAPSULE_TARGET: container.env!.find((e) => e.name === "CAPSULE_TARGET")!.value!,
      CAPSULE_S3_BUCKET: bucket,
      AWS_ACCESS_KEY_ID: servers.s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: servers.s3.secretAccessKey,
      PGUSER: servers.pg.user,
      PGPASSWORD: planted.wrongPgPassword,
    };
    const result = await capsule(container.args!, { PATH: process.env["PATH"], ...podEnv });
    produced.push(
      { where: "capsule run: stdout", text: result.stdout },
      { where: "capsule run: stderr", text: result.stderr },
    );
    assert.equal(result.code, 1);
    assert.match(result.stderr, /"msg":"backup failed"/);
  });

  test("GIVEN the daemon with a token and a restore key WHEN its API is used and bad requests are filed THEN it answers and rejects", async () => {
    process.env["AUDIT_TOKEN"] = planted.statusToken;
    const log = capturedLogger("daemon");
    const daemon = new Daemon({
      statusOnly: true,
      store,
      listen: { host: "127.0.0.1", port: 0 },
      token: planted.statusToken,
      allowRequests: true,
      lease: { name: "", namespace: "" },
      identity: "audit",
      processMetrics: false,
      log,
    });
    const base = `http://127.0.0.1:${(await daemon.start()).port}`;
    try {
      const id = (await store.list({ cluster: CLUSTER, engine: "postgresql" }))[0]!.ref.backupId;
      for (const [p, token] of [
        ["/healthz", null],
        ["/readyz", null],
        ["/metrics", planted.statusToken],
        ["/api/v1/clusters", planted.statusToken],
        [`/api/v1/clusters/${CLUSTER}/backups`, planted.statusToken],
        [`/api/v1/clusters/${CLUSTER}/backups/${id}`, planted.statusToken],
        ["/api/v1/clusters", "not-the-token"],
        [`/api/v1/clusters/${CLUSTER}/backups?limit=${planted.statusToken}`, planted.statusToken],
      ] as const) {
        const res = await fetch(`${base}${p}`, {
          headers: token ? { authorization: `Bearer ${token}` } : {},
        });
        produced.push({
          where: `GET ${p}`,
          text: `${JSON.stringify([...res.headers])}\n${await res.text()}`,
        });
      }
      const post = await fetch(`${base}/api/v1/clusters/${CLUSTER}/backups`, {
        method: "POST",
        headers: { authorization: `Bearer ${planted.statusToken}`, "content-type": "application/json" },
        body: JSON.stringify({ target: "pg", requestedBy: "auditor" }),
      });
      produced.push({ where: "POST backups", text: await post.text() });
      assert.equal(post.status, 202);
    } finally {
      await daemon.stop();
    }
    produced.push({ where: "daemon log", text: log.lines.map((l) => JSON.stringify(l)).join("\n") });

    // Restore requests signed with the wrong key, or carrying a secret in a field: rejected with a reason.
    const body = {
      action: "restore" as const,
      target: "pg",
      backupId: "postgresql-20260101T000000Z-abc123",
      requestedBy: `someone ${planted.hmacKey}`,
      requestedAt: new Date().toISOString(),
    };
    await objectsOf(store).put(
      layout.requestKey(prefixOf(store), CLUSTER, "req-wrong-key"),
      JSON.stringify({ ...body, signature: signRequest("not-the-key", CLUSTER, "req-wrong-key", body) }),
    );
    await objectsOf(store).put(
      layout.requestKey(prefixOf(store), CLUSTER, "req-garbage"),
      `{"action": "${planted.hmacKey}"`,
    );
    const watcherLog = capturedLogger("watcher");
    const { workloads } = await clientsFor(api);
    await new RequestWatcher({
      store,
      workloads,
      clusters: () => [CLUSTER],
      cronJobOf: () => undefined,
      identity: "audit",
      log: watcherLog,
      restore: { enabled: true, hmacKey: planted.hmacKey },
    }).pollOnce();
    produced.push({ where: "watcher log", text: watcherLog.lines.map((l) => JSON.stringify(l)).join("\n") });
  });

  test("GIVEN a kube context with a bucket Secret WHEN the cluster-aware CLI runs, right and wrong THEN it lists or fails in one line", async () => {
    api.put("cnvrgapps", cnvrgApp("audit", "app"));
    const put = (secretKey: string) =>
      api.putSecret("audit", "cp-object-storage", {
        ...cnvrgStorageSecret(servers.s3, bucket),
        CNVRG_STORAGE_SECRET_KEY: secretKey,
      });
    const kube = {
      KUBECONFIG: await api.kubeconfigFile(),
      PATH: process.env["PATH"] ?? "",
      HOME: "/nonexistent",
    };
    put(servers.s3.secretAccessKey);
    const listed = await capsule(["pg", "--list"], kube);
    produced.push(
      { where: "cluster-aware list: stdout", text: listed.stdout },
      { where: "cluster-aware list: stderr", text: listed.stderr },
    );
    assert.equal(listed.code, 0, listed.stderr);
    put(planted.wrongS3Secret);
    const refused = await capsule(["pg", "--list"], kube);
    produced.push({ where: "cluster-aware wrong key: stderr", text: refused.stderr });
    assert.equal(refused.code, 1);
  });

  test("GIVEN everything capsule produced and everything in the bucket WHEN searched THEN no secret value (or its base64) appears", async () => {
    for await (const object of objectsOf(store).list("")) {
      if (!object.key.endsWith(".json")) continue; // artifacts hold the databases' data, not capsule's words
      if (/req-(garbage|wrong-key)\.json$/.test(object.key)) continue; // written by this test, as an attacker would
      produced.push({
        where: `bucket ${object.key}`,
        text: (await getBytes(objectsOf(store), object.key)).toString(),
      });
    }
    const outcomes = produced.filter(
      (p) => p.where.includes("/requests/") && p.where.endsWith(".outcome.json"),
    );
    assert.ok(outcomes.length >= 2, "the rejected requests have outcomes to audit");
    assert.ok(
      produced.some((p) => p.where.endsWith("statefile.json") && p.text.includes('"failed"')),
      "a failed run",
    );
    const forms = secrets.flatMap((s) => [s, Buffer.from(s).toString("base64")]);
    const leaks = produced.flatMap(({ where, text }) =>
      forms.filter((s) => text.includes(s)).map((s) => `${where} contains ${s.slice(0, 6)}…`),
    );
    assert.deepEqual(leaks, [], `secret values leaked:\n${leaks.join("\n")}`);
    assert.ok(produced.length > 40, `audited ${produced.length} outputs`);
  });
});
