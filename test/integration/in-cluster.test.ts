/**
 * `--in-cluster` and signed restore requests, end to end: a plan's CronJobs and Secrets live in the fake API server,
 * the fake kubelet runs each Job's pod for real (capsule's entrypoint with the env built from the Secrets) against
 * the harness' PostgreSQL, Redis and radosgw, and the operator's capsule on the "laptop" has only a kubeconfig —
 * no database password and no bucket credentials.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { generateX25519Identity, identityToRecipient } from "age-encryption";
import { compileManifests } from "../../src/compiler/compile.js";
import type { CronJobManifest } from "../../src/compiler/cronjob.js";
import { Pods } from "../../src/k8s/pods.js";
import { gatherPlans } from "../../src/runtime/gather-plans.js";
import { signRequest, type RequestOutcome } from "../../src/requests/request.js";
import { RequestWatcher } from "../../src/requests/watcher.js";
import { openBackupStore } from "../../src/runtime/bucket.js";
import type { BackupStore } from "../../src/storage/backup-store.js";
import { getBytes } from "../../src/storage/object-store.js";
import { FakeKubeApiServer } from "../fakes/kube-apiserver.js";
import { capturedLogger, clientsFor, eventually } from "../fakes/kube-clients.js";
import { FakeKubelet } from "../fakes/kubelet.js";
import { createBucket, testServers, uniqueName, type TestServers } from "../harness/index.js";
import { capsule } from "../support/cli.js";
import { planS3Secret, writeHarnessPlan } from "../support/plan.js";
import { sql } from "../support/pg.js";
import { objectsOf, prefixOf } from "../support/raw-bucket.js";
import { layout } from "../../src/storage/layout.js";

const CLUSTER = "apps.cnvrg";
const NAMESPACE = "apps";

describe("--in-cluster and restore requests (fake API server + fake kubelet, real PostgreSQL, Redis, radosgw)", () => {
  let servers: TestServers;
  let api: FakeKubeApiServer;
  let kubelet: FakeKubelet;
  let kubeconfig: string;
  let store: BackupStore;
  let db: string;
  let cronJobs: CronJobManifest[];
  /** The laptop: a kubeconfig and nothing else. */
  const laptop = () => ({ KUBECONFIG: kubeconfig, USER: "alice", HOME: "/nonexistent" });

  before(async () => {
    servers = await testServers();
    api = await new FakeKubeApiServer().start();
    kubeconfig = await api.kubeconfigFile();
    kubelet = new FakeKubelet(api, {
      baseEnv: { PATH: process.env["PATH"] ?? "" },
    }).start();
    const bucket = uniqueName("incluster");
    await createBucket(servers.s3, bucket);
    db = uniqueName("incluster").replace(/-/g, "_");
    await sql(servers, "postgres", `CREATE DATABASE ${db}`);
    await sql(servers, db, "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 500);");
    const identity = await generateX25519Identity();
    const dir = await writeHarnessPlan(servers, {
      cluster: CLUSTER,
      bucket,
      targets: `    - name: pg
      engine: postgresql
      namespace: ${NAMESPACE}
      connection: { host: ${servers.pg.host}, port: ${servers.pg.port}, database: ${db} }
      credentials: { secretName: pg-creds }
      schedule: { period: 24h }
      retention: { keepLast: 5 }
    - name: pg-other
      engine: postgresql
      namespace: ${NAMESPACE}
      connection: { host: ${servers.pg.host}, port: ${servers.pg.port}, database: postgres }
      credentials: { secretName: pg-creds }
      schedule: { period: 24h }
      retention: { keepLast: 5 }
    - name: pg-enc
      engine: postgresql
      namespace: ${NAMESPACE}
      connection: { host: ${servers.pg.host}, port: ${servers.pg.port}, database: ${db} }
      credentials: { secretName: pg-creds }
      schedule: { period: 24h }
      retention: { keepLast: 5 }
      verify: { schedule: { period: 7d } }
      encryption:
        recipients: ["${await identityToRecipient(identity)}"]
        identitySecretRef: { secretName: age-key, key: identity }
    - name: cache
      engine: redis
      namespace: ${NAMESPACE}
      connection: { host: ${servers.redis.host}, port: ${servers.redis.port} }
      credentials: { secretName: redis-creds }
      schedule: { period: 6h }
      retention: { keepLast: 5 }
`,
    });
    cronJobs = compileManifests((await gatherPlans({ plans: dir })).plans);
    for (const cronJob of cronJobs)
      api.put("cronjobs", JSON.parse(JSON.stringify(cronJob)) as Record<string, unknown>);
    const secret = (name: string, values: Record<string, string>) => api.putSecret(NAMESPACE, name, values);
    secret("backup-s3", planS3Secret(servers));
    secret("pg-creds", { POSTGRES_USER: servers.pg.user, POSTGRES_PASSWORD: servers.pg.password });
    secret("redis-creds", { CNVRG_REDIS_PASSWORD: "" });
    secret("age-key", { identity });
    store = openBackupStore(
      { bucket: `s3://${bucket}/capsule` },
      {
        AWS_ENDPOINT_URL_S3: servers.s3.endpoint,
        AWS_ACCESS_KEY_ID: servers.s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: servers.s3.secretAccessKey,
        AWS_REGION: "us-east-1",
      },
    );
  });

  after(async () => {
    await kubelet.stop();
    await api.close();
  });

  const jobsCreated = () => api.list("jobs").length;

  test("GIVEN a laptop with only a kubeconfig WHEN it runs pg --create --in-cluster THEN a never-retried Job from the CronJob backs up and its id is printed", async () => {
    const before = jobsCreated();
    const result = await capsule(["pg", "--create", "--in-cluster", "--target", "pg"], laptop());
    assert.equal(result.code, 0, result.stderr);
    const backupId = result.stdout.trim();
    assert.match(backupId, /^postgresql-/);
    assert.match(result.stderr, /created Job apps\/.+ from CronJob/);
    assert.match(result.stderr, /"msg":"backup succeeded"/, "the pod's log is followed");
    assert.equal(jobsCreated(), before + 1);

    const entry = await store.get({ cluster: CLUSTER, engine: "postgresql", backupId });
    assert.equal(entry.state, "succeeded");
    assert.equal(entry.statefile?.trigger.type, "request");
    assert.match(entry.statefile?.trigger.requestedBy ?? "", /^alice@.+\(capsule --in-cluster\)$/);

    const job = api.list("jobs").at(-1) as {
      spec: {
        backoffLimit: number;
        template: { spec: { containers: Array<{ env: Array<{ name: string; value?: string }> }> } };
      };
    };
    assert.equal(job.spec.backoffLimit, 0);
    const values = job.spec.template.spec.containers[0]!.env.map((e) => e.value ?? "").join(" ");
    assert.ok(!values.includes(servers.pg.password), "no secret value in the Job: only secretKeyRefs");
  });

  test("GIVEN a backup WHEN pg --restore --in-cluster --to-database runs THEN the pod restores it, the statefile records it, and the summary is printed", async () => {
    const created = await capsule(["pg", "--create", "--in-cluster", "--target", "pg"], laptop());
    assert.equal(created.code, 0, created.stderr);
    const backupId = created.stdout.trim();
    const copy = `${db}_copy`;
    const result = await capsule(
      ["pg", "--restore", "--in-cluster", "--target", "pg", "--id", backupId, "--to-database", copy, "--yes"],
      laptop(),
    );
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`restored ${backupId} into ${copy}: 1 tables, 500 rows match`));
    const rows = await sql(servers, copy, "SELECT count(*) AS n FROM t");
    assert.equal(Number((rows[0] as { n: string }).n), 500);
    const entry = await store.get({ cluster: CLUSTER, engine: "postgresql", backupId });
    const record = entry.statefile?.restores.at(-1);
    assert.equal(record?.result, "succeeded");
    assert.match(record?.requestId ?? "", /^cli-/);
    assert.match(record?.to ?? "", new RegExp(copy));
  });

  test("GIVEN an encrypted target WHEN its backup is restored --in-cluster THEN the Job comes from the restore-drill CronJob, the only one holding the age identity", async () => {
    const created = await capsule(["pg", "--create", "--in-cluster", "--target", "pg-enc"], laptop());
    assert.equal(created.code, 0, created.stderr);
    const backupId = created.stdout.trim();
    const entry = await store.get({ cluster: CLUSTER, engine: "postgresql", backupId });
    assert.equal(
      entry.statefile?.artifact?.encryption.type,
      "age",
      "the backup pod encrypted without the identity",
    );
    const copy = `${db}_enc`;
    const restored = await capsule(
      [
        "pg",
        "--restore",
        "--in-cluster",
        "--target",
        "pg-enc",
        "--id",
        backupId,
        "--to-database",
        copy,
        "--yes",
      ],
      laptop(),
    );
    assert.equal(restored.code, 0, restored.stderr);
    assert.match(restored.stderr, /from CronJob capsule-apps-cnvrg-pg-enc-verify/);
    const rows = await sql(servers, copy, "SELECT count(*) AS n FROM t");
    assert.equal(Number((rows[0] as { n: string }).n), 500);
  });

  test("GIVEN a restore that fails inside the pod WHEN run --in-cluster THEN capsule exits with the container's exit code and says so in one line", async () => {
    const result = await capsule(
      [
        "pg",
        "--restore",
        "--in-cluster",
        "--target",
        "pg",
        "--id",
        "postgresql-20200101T000000Z-000000",
        "--yes",
      ],
      laptop(),
    );
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /no backup postgresql-20200101T000000Z-000000/,
      "the pod's own error is shown",
    );
    assert.match(result.stderr, /Job apps\/.+ failed: exit code 1 \(Error\)/);
    assert.equal(result.stdout, "");
  });

  test("GIVEN a redis target WHEN redis --create --in-cluster runs THEN the only redis CronJob is chosen without --target", async () => {
    const result = await capsule(["redis", "--create", "--in-cluster"], laptop());
    assert.equal(result.code, 0, result.stderr);
    const backupId = result.stdout.trim();
    assert.equal((await store.get({ cluster: CLUSTER, engine: "redis", backupId })).state, "succeeded");
  });

  test("GIVEN ambiguous or impossible requests WHEN run --in-cluster THEN one line names the choices or the flag, and no Job is made", async () => {
    const before = jobsCreated();
    const ambiguous = await capsule(["pg", "--create", "--in-cluster"], laptop());
    assert.equal(ambiguous.code, 1);
    assert.match(
      ambiguous.stderr,
      /has 3 postgresql targets: pass --target with one of pg, pg-enc, pg-other/,
    );
    const unknown = await capsule(["pg", "--create", "--in-cluster", "--cluster", "nope.x"], laptop());
    assert.match(unknown.stderr, /no postgresql CronJob of cluster nope\.x .*\(clusters: apps\.cnvrg\)/);
    const withHost = await capsule(
      ["pg", "--create", "--in-cluster", "--host", "db", "--target", "pg"],
      laptop(),
    );
    assert.equal(withHost.code, 2);
    assert.match(
      withHost.stderr,
      /--host does not apply to --create --in-cluster: it runs with the target's own bucket, connection/,
    );
    const listing = await capsule(["pg", "--list", "--in-cluster"], laptop());
    assert.equal(listing.code, 2);
    assert.match(listing.stderr, /--in-cluster does not apply to --list/);
    for (const r of [ambiguous, unknown, withHost, listing])
      assert.equal(r.stderr.trim().split("\n").length, 1);
    assert.equal(jobsCreated(), before);
  });

  test("GIVEN a pod evicted while it runs WHEN run --in-cluster THEN capsule exits 1 and says the Job failed, without waiting forever", async () => {
    kubelet.evictNext = true;
    const result = await capsule(["redis", "--create", "--in-cluster"], laptop());
    assert.equal(result.code, 1);
    assert.match(result.stderr, /the node is about to go away/);
    assert.match(result.stderr, /Job apps\/.+ failed: exit code 1/);
  });

  test("GIVEN a pod whose Secret is missing WHEN run --in-cluster THEN capsule stops waiting with the kubelet's reason", async () => {
    const saved = api.get("secrets", NAMESPACE, "redis-creds");
    api.remove("secrets", NAMESPACE, "redis-creds");
    try {
      const result = await capsule(["redis", "--create", "--in-cluster"], laptop());
      assert.equal(result.code, 1);
      assert.match(
        result.stderr,
        /its pod cannot start: CreateContainerConfigError: secret "redis-creds" not found/,
      );
    } finally {
      api.put("secrets", saved!);
    }
  });

  test("GIVEN a followed log stream cut while the container runs WHEN it is resumed THEN every line arrives exactly once", async () => {
    api.put("pods", { apiVersion: "v1", kind: "Pod", metadata: { name: "cut", namespace: NAMESPACE } });
    api.startLog(NAMESPACE, "cut");
    api.appendLog(NAMESPACE, "cut", "one");
    api.appendLog(NAMESPACE, "cut", "two");
    const { kube } = await clientsFor(api);
    const pods = new Pods(kube);
    const lines: string[] = [];
    const first = pods.followLog(NAMESPACE, "cut", "capsule", (l) => lines.push(l));
    await eventually(() => lines.length === 2, 5000, "the first two lines");
    api.appendLog(NAMESPACE, "cut", "three");
    await eventually(() => lines.length === 3, 5000, "the third line");
    api.cutLogStreams(NAMESPACE, "cut");
    const last = await first;
    api.appendLog(NAMESPACE, "cut", "four");
    api.endLog(NAMESPACE, "cut");
    await pods.followLog(NAMESPACE, "cut", "capsule", (l) => lines.push(l), last);
    assert.deepEqual(lines, ["one", "two", "three", "four"]);
  });

  test("GIVEN a signed restore request in the bucket WHEN the watcher runs it THEN a Job restores the backup for real and the outcome is succeeded", async () => {
    const created = await capsule(["pg", "--create", "--in-cluster", "--target", "pg"], laptop());
    const backupId = created.stdout.trim();
    await sql(servers, db, "DELETE FROM t WHERE id > 100");
    const key = "restore-signing-key-for-tests";
    const id = "req-restore-1";
    const body = {
      action: "restore" as const,
      target: "pg",
      backupId,
      requestedBy: "ops@example.com",
      requestedAt: new Date().toISOString(),
    };
    await objectsOf(store).put(
      layout.requestKey(prefixOf(store), CLUSTER, id),
      JSON.stringify({ ...body, signature: signRequest(key, CLUSTER, id, body) }),
    );
    const { workloads } = await clientsFor(api);
    const byTarget = new Map(cronJobs.map((c) => [c.metadata.labels["capsule.cnvrg.io/target"], c]));
    const watcher = new RequestWatcher({
      store,
      workloads,
      clusters: () => [CLUSTER],
      cronJobOf: (cluster, target) => (cluster === CLUSTER ? byTarget.get(target) : undefined),
      identity: "test",
      log: capturedLogger("watcher"),
      restore: { enabled: true, hmacKey: key },
    });
    const outcome = async () =>
      JSON.parse(
        (await getBytes(objectsOf(store), layout.outcomeKey(prefixOf(store), CLUSTER, id))).toString(),
      ) as RequestOutcome;
    await watcher.pollOnce();
    await eventually(
      async () => {
        await watcher.pollOnce();
        return (await outcome()).state !== "accepted";
      },
      60_000,
      "the restore request to finish",
    );
    const done = await outcome();
    assert.equal(done.state, "succeeded", done.reason);
    const rows = await sql(servers, db, "SELECT count(*) AS n FROM t");
    assert.equal(Number((rows[0] as { n: string }).n), 500, "the deleted rows are back");
    const record = (
      await store.get({ cluster: CLUSTER, engine: "postgresql", backupId })
    ).statefile?.restores.at(-1);
    assert.equal(record?.requestId, id);
    assert.equal(record?.requestedBy, "ops@example.com");
  });
});
