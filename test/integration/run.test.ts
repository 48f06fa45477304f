/**
 * `capsule run` as a CronJob runs it: a plan is compiled, the CronJob's container env is resolved the way the
 * kubelet would (plain values, secretKeyRefs from Secrets), and its args are executed against the harness'
 * PostgreSQL, Redis and S3. Proves the compiler and the run agree on the contract end to end.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { compileManifests } from "../../src/compiler/compile.js";
import { gatherPlans } from "../../src/runtime/gather-plans.js";
import { openBackupStore } from "../../src/runtime/bucket.js";
import { FakeElasticsearch } from "../fakes/elasticsearch.js";
import { resolveContainerEnv, type EnvVar } from "../fakes/pod-env.js";
import { createBucket, testServers, uniqueName, type TestServers } from "../harness/index.js";
import { capsule } from "../support/cli.js";
import { planS3Secret, writeHarnessPlan } from "../support/plan.js";
import { sql } from "../support/pg.js";

type Secrets = Record<string, Record<string, string>>;

describe("capsule run", () => {
  let servers: TestServers;
  let bucket: string;
  let db: string;
  let jobs: Array<{ target: string; args: string[]; env: Record<string, string> }>;
  let es: FakeElasticsearch;

  after(() => es.close());

  before(async () => {
    servers = await testServers();
    es = await FakeElasticsearch.start({
      flavour: "8",
      user: { name: "elastic", password: "es-secret-pass" },
      refreshIntervalMs: 0,
    });
    es.seed("orders", { mappings: { properties: { n: { type: "long" } } } }, [
      { id: "1", source: { n: 1 } },
      { id: "2", source: { n: 2 } },
    ]);
    bucket = uniqueName("run");
    await createBucket(servers.s3, bucket);
    db = uniqueName("rundb").replace(/-/g, "_");
    await sql(servers, "postgres", `CREATE DATABASE ${db}`);
    await sql(servers, db, "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 1000);");

    const dir = await writeHarnessPlan(servers, {
      cluster: "run.test",
      bucket,
      targets: `    - name: pg
      engine: postgresql
      namespace: apps
      connection: { host: ${servers.pg.host}, port: ${servers.pg.port}, database: ${db} }
      credentials: { secretName: pg-creds }
      schedule: { period: 24h }
      retention: { keepLast: 2 }
      verify: { schedule: { period: 7d } }
    - name: search
      engine: elasticsearch
      namespace: apps
      connection: { url: "${es.url}", port: 9200 }
      credentials: { secretName: es-creds }
      schedule: { period: 12h }
      retention: { keepLast: 3 }
    - name: cache
      engine: redis
      namespace: apps
      connection: { host: ${servers.redis.host}, port: ${servers.redis.port} }
      credentials: { secretName: redis-creds }
      schedule: { period: 6h }
      retention: { keepLast: 1 }
`,
    });
    const secrets: Secrets = {
      "es-creds": { CNVRG_ES_USER: "elastic", CNVRG_ES_PASS: "es-secret-pass" },
      "backup-s3": planS3Secret(servers),
      "pg-creds": { POSTGRES_USER: servers.pg.user, POSTGRES_PASSWORD: servers.pg.password },
      "redis-creds": { CNVRG_REDIS_PASSWORD: "" },
    };
    const { plans } = await gatherPlans({ plans: dir });
    jobs = compileManifests(plans).map((cronJob) => {
      const container = cronJob.spec.jobTemplate.spec!.template.spec!.containers[0]!;
      return {
        target:
          cronJob.metadata.labels["capsule.cnvrg.io/target"]! +
          (cronJob.metadata.labels["capsule.cnvrg.io/job"] === "verify" ? "/verify" : ""),
        args: container.args as string[],
        env: resolveContainerEnv(container.env as EnvVar[], (name) => secrets[name]),
      };
    });
  });

  test("GIVEN a compiled PostgreSQL CronJob WHEN its pod runs three times THEN each run succeeds and retention keeps the newest two", async () => {
    const job = jobs.find((j) => j.target === "pg")!;
    assert.equal(job.args[0], "run");
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const result = await capsule(job.args, job.env);
      assert.equal(result.code, 0, result.stderr);
      ids.push(result.stdout.trim());
      assert.match(result.stderr, /"msg":"backup succeeded"/);
    }
    const store = openBackupStore(
      { bucket: `s3://${bucket}/capsule` },
      { ...job.env, AWS_ENDPOINT_URL_S3: servers.s3.endpoint },
    );
    const listed = await store.list({ cluster: "run.test", engine: "postgresql", target: "pg" });
    assert.deepEqual(
      listed.map((e) => e.ref.backupId),
      [ids[2], ids[1]],
    );
    assert.ok(listed.every((e) => e.state === "succeeded" && e.statefile?.trigger.type === "schedule"));
    assert.equal(
      (listed[0]?.statefile?.fingerprint as { tables: Record<string, number> }).tables["public.t"],
      1000,
    );
  });

  test("GIVEN the compiled restore-drill CronJob WHEN its pod runs THEN the newest backup is verified in its statefile", async () => {
    const job = jobs.find((j) => j.target === "pg/verify")!;
    assert.deepEqual(job.args.slice(-2), ["--verify", "latest"]);
    const result = await capsule(job.args, job.env);
    assert.equal(result.code, 0, result.stderr);
    const store = openBackupStore(
      { bucket: `s3://${bucket}/capsule` },
      { ...job.env, AWS_ENDPOINT_URL_S3: servers.s3.endpoint },
    );
    const [newest] = (await store.list({ cluster: "run.test", engine: "postgresql", target: "pg" })).filter(
      (e) => e.state === "succeeded",
    );
    assert.equal(result.stdout.trim(), newest?.ref.backupId);
    assert.equal(newest?.statefile?.verification.status, "verified");
  });

  test("GIVEN a compiled Redis CronJob WHEN its pod runs THEN a succeeded backup is in the bucket", async () => {
    const job = jobs.find((j) => j.target === "cache")!;
    const result = await capsule(job.args, job.env);
    assert.equal(result.code, 0, result.stderr);
    const store = openBackupStore(
      { bucket: `s3://${bucket}/capsule` },
      { ...job.env, AWS_ENDPOINT_URL_S3: servers.s3.endpoint },
    );
    const [entry] = await store.list({ cluster: "run.test", engine: "redis" });
    assert.equal(entry?.state, "succeeded");
  });

  test("GIVEN a compiled Elasticsearch CronJob WHEN its pod runs THEN the export is in the bucket with its document counts", async () => {
    const job = jobs.find((j) => j.target === "search")!;
    const result = await capsule(job.args, job.env);
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(result.stderr, /es-secret-pass/);
    const store = openBackupStore(
      { bucket: `s3://${bucket}/capsule` },
      { ...job.env, AWS_ENDPOINT_URL_S3: servers.s3.endpoint },
    );
    const [entry] = await store.list({ cluster: "run.test", engine: "elasticsearch" });
    assert.equal(entry?.state, "succeeded");
    assert.equal((entry?.statefile?.fingerprint as { docs: number }).docs, 2);
  });

  test("GIVEN the database is unreachable WHEN the pod runs THEN it exits non-zero, the run is failed, and no good backup is pruned", async () => {
    const job = jobs.find((j) => j.target === "pg")!;
    const before = await capsule(
      ["pg", "--list", "--cluster", "run.test", "--bucket", `s3://${bucket}/capsule`, "-o", "json"],
      {
        ...job.env,
        AWS_ENDPOINT_URL_S3: servers.s3.endpoint,
      },
    );
    const good = (JSON.parse(before.stdout) as Array<{ backupId: string; state: string }>).filter(
      (e) => e.state === "succeeded",
    );
    const broken = { ...job.env, PGPASSWORD: "not-the-password" };
    const result = await capsule(job.args, broken);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /authentication failed/);
    assert.doesNotMatch(result.stderr, /not-the-password/);
    const after = await capsule(
      ["pg", "--list", "--cluster", "run.test", "--bucket", `s3://${bucket}/capsule`, "-o", "json"],
      {
        ...job.env,
        AWS_ENDPOINT_URL_S3: servers.s3.endpoint,
      },
    );
    const entries = JSON.parse(after.stdout) as Array<{ backupId: string; state: string }>;
    assert.equal(entries[0]?.state, "failed");
    assert.deepEqual(
      entries.filter((e) => e.state === "succeeded").map((e) => e.backupId),
      good.map((e) => e.backupId),
    );
  });

  test("GIVEN no CAPSULE_TARGET or a mismatched --target WHEN run THEN one clear line", async () => {
    const missing = await capsule(["run"], {});
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /CAPSULE_TARGET is not set/);
    const job = jobs.find((j) => j.target === "pg")!;
    const mismatched = await capsule(["run", "--cluster", "run.test", "--target", "other"], job.env);
    assert.equal(mismatched.code, 2);
    assert.match(mismatched.stderr, /--target other does not match CAPSULE_TARGET's target pg/);
  });

  test("GIVEN restore flags WHEN misused in a pod THEN one line names the flag, and nothing is restored", async () => {
    const job = jobs.find((j) => j.target === "pg")!;
    const cases: Array<[string[], RegExp]> = [
      [["--to-database", "x"], /--to-database needs --restore ID/],
      [["--restore", "some-id", "--replace"], /--replace applies to elasticsearch targets, not postgresql/],
      [["--restore", "some-id", "--verify", "latest"], /choose one of --restore and --verify/],
      [
        ["--restore", "some-id", "--in-place", "--to-database", "x"],
        /choose one of --in-place and --to-database/,
      ],
    ];
    for (const [extra, message] of cases) {
      const result = await capsule([...job.args, ...extra], job.env);
      assert.equal(result.code, 2, extra.join(" "));
      assert.match(result.stderr, message);
      assert.equal(result.stderr.trim().split("\n").length, 1);
    }
  });
});
