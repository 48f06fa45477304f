/**
 * The cluster-aware CLI: with a kube context and no --bucket, `capsule pg --list` finds the CnvrgApp, reads its
 * bucket Secret and lists what that cluster's CronJobs wrote. Kubernetes is the wire-level fake; S3 is radosgw.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { openBackupStore } from "../../src/runtime/bucket.js";
import { normalizeEndpoint } from "../../src/runtime/run-target.js";
import { layout } from "../../src/storage/layout.js";
import { serializeStatefile } from "../../src/storage/statefile.js";
import { cnvrgApp, cnvrgStorageSecret } from "../fakes/cnvrgapps.js";
import { FakeKubeApiServer } from "../fakes/kube-apiserver.js";
import { createBucket, s3Env, testServers, uniqueName } from "../harness/index.js";
import { capsule } from "../support/cli.js";
import { statefile } from "../support/entries.js";
import { objectsOf, prefixOf } from "../support/raw-bucket.js";

describe("capsule <engine> with a kube context and no --bucket", () => {
  let fake: FakeKubeApiServer;
  let kubeconfig: string;
  let secretKey: string;
  const backupId = "postgresql-20261120T010000Z-abcdef";

  before(async () => {
    const servers = await testServers();
    secretKey = servers.s3.secretAccessKey;
    const bucket = uniqueName("cluster");
    await createBucket(servers.s3, bucket);
    const store = openBackupStore({ bucket: `s3://${bucket}/capsule` }, s3Env(servers.s3));
    const s = statefile({ cluster: "ml.cnvrg", backupId, at: "2026-11-20T01:00:00.000Z" });
    await objectsOf(store).put(layout.statefileKey(prefixOf(store), s), serializeStatefile(s));

    fake = await new FakeKubeApiServer().start();
    fake.put("cnvrgapps", cnvrgApp("ml", "cnvrg"));
    fake.put("cnvrgapps", cnvrgApp("other", "cnvrg"));
    fake.putSecret("ml", "cp-object-storage", cnvrgStorageSecret(servers.s3, bucket));
    kubeconfig = await fake.kubeconfigFile();
  });
  after(() => fake.close());

  test("GIVEN two CnvrgApps WHEN no --cluster is given THEN one line lists the choices", async () => {
    const result = await capsule(["pg", "--list"], { KUBECONFIG: kubeconfig });
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /2 CnvrgApps in kube context .*: pass --cluster with one of ml\.cnvrg, other\.cnvrg/,
    );
  });

  test("GIVEN --cluster ns.name WHEN listing THEN the app's bucket Secret is used and its backups are listed", async () => {
    const result = await capsule(["pg", "--list", "--cluster", "ml.cnvrg", "-o", "json"], {
      KUBECONFIG: kubeconfig,
    });
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(
      (JSON.parse(result.stdout) as Array<{ backupId: string }>).map((e) => e.backupId),
      [backupId],
    );
    assert.doesNotMatch(result.stdout + result.stderr, new RegExp(secretKey));
  });

  test("GIVEN an unknown --cluster WHEN listing THEN it says which apps exist", async () => {
    const result = await capsule(["pg", "--list", "--cluster", "nope.app"], { KUBECONFIG: kubeconfig });
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /no CnvrgApp nope\.app in kube context .* \(there are: ml\.cnvrg, other\.cnvrg\)/,
    );
  });

  test("GIVEN an app whose bucket Secret is missing WHEN listing THEN one line names the Secret", async () => {
    const result = await capsule(["pg", "--list", "--cluster", "other.cnvrg"], { KUBECONFIG: kubeconfig });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /other\/cp-object-storage/);
    assert.equal(result.stderr.trim().split("\n").length, 1);
  });

  test("GIVEN storage endpoints with and without a scheme THEN they become URLs (https unless port 80)", () => {
    assert.equal(normalizeEndpoint("http://minio:9000"), "http://minio:9000");
    assert.equal(normalizeEndpoint("minio.cnvrg:9000"), "https://minio.cnvrg:9000");
    assert.equal(normalizeEndpoint("minio:80"), "http://minio:80");
    assert.equal(normalizeEndpoint("  "), undefined);
  });
});

describe("capsule <engine> with a kube context: the bucket Secret's storage type", () => {
  let fake: FakeKubeApiServer;
  let kubeconfig: string;
  const s3Secret = "s3-secret-key-of-a-half-pair";
  const keyFileContent = "not-json-gcp-key-material";

  before(async () => {
    fake = await new FakeKubeApiServer().start();
    const storage = (type: string, over: Record<string, string> = {}) => ({
      CNVRG_STORAGE_TYPE: type,
      CNVRG_STORAGE_ENDPOINT: "http://minio.apps.example.com",
      CNVRG_STORAGE_BUCKET: "cnvrg-storage",
      CNVRG_STORAGE_REGION: "eastus",
      CNVRG_STORAGE_ACCESS_KEY: "",
      CNVRG_STORAGE_SECRET_KEY: "",
      CNVRG_STORAGE_AZURE_ACCESS_KEY: "",
      CNVRG_STORAGE_AZURE_ACCOUNT_NAME: "",
      CNVRG_STORAGE_AZURE_CONTAINER: "",
      CNVRG_STORAGE_GCP_SECRET_REF: "gcp-storage-secret",
      ...over,
    });
    for (const [ns, secret] of [
      ["unknown", storage("ceph")],
      ["half", storage("aws", { CNVRG_STORAGE_SECRET_KEY: s3Secret })],
      ["gcp", storage("gcp")],
      ["gcpnokey", storage("gcp", { CNVRG_STORAGE_GCP_SECRET_REF: "missing-key" })],
      [
        "azure",
        storage("azure", { CNVRG_STORAGE_AZURE_ACCOUNT_NAME: "acct1", CNVRG_STORAGE_AZURE_CONTAINER: "c1" }),
      ],
    ] as const) {
      fake.put("cnvrgapps", cnvrgApp(ns, "cnvrg"));
      fake.putSecret(ns, "cp-object-storage", secret);
    }
    fake.putSecret("gcp", "gcp-storage-secret", { "key.json": keyFileContent });
    kubeconfig = await fake.kubeconfigFile();
  });
  after(() => fake.close());

  const list = (cluster: string, ...more: string[]) =>
    capsule(["pg", "--list", "--cluster", cluster, ...more], { KUBECONFIG: kubeconfig });
  const oneLine = (stderr: string) => assert.equal(stderr.trim().split("\n").length, 1, stderr);

  test("GIVEN CNVRG_STORAGE_TYPE ceph WHEN listing THEN one line names the key and its value", async () => {
    const result = await list("unknown.cnvrg");
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /CAPSULE_CONFIG: Secret unknown\/cp-object-storage: CNVRG_STORAGE_TYPE must be one of minio, aws, azure, gcp \(got "ceph"\)/,
    );
    oneLine(result.stderr);
  });

  test("GIVEN aws with only the secret key WHEN listing THEN one line names the empty key, never the value", async () => {
    const result = await list("half.cnvrg");
    assert.equal(result.code, 1);
    assert.match(result.stderr, /CNVRG_STORAGE_ACCESS_KEY is empty but CNVRG_STORAGE_SECRET_KEY is set/);
    assert.doesNotMatch(result.stderr, new RegExp(s3Secret));
    oneLine(result.stderr);
  });

  test("GIVEN gcp whose key Secret holds no JSON WHEN listing THEN one line names that Secret's key, not its content", async () => {
    const result = await list("gcp.cnvrg");
    assert.equal(result.code, 1);
    assert.match(result.stderr, /Secret gcp\/gcp-storage-secret: key\.json is not a JSON key file/);
    assert.doesNotMatch(result.stderr, new RegExp(keyFileContent));
    oneLine(result.stderr);
  });

  test("GIVEN gcp whose key Secret is missing WHEN listing THEN one line names it", async () => {
    const result = await list("gcpnokey.cnvrg");
    assert.equal(result.code, 1);
    assert.match(result.stderr, /gcpnokey\/missing-key/);
    oneLine(result.stderr);
  });

  test("GIVEN azure WHEN S3 flags are given THEN one line says they do not apply to its storage type", async () => {
    const result = await list("azure.cnvrg", "--region", "eu-west-1");
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /S3 settings \(region\) do not apply to Secret azure\/cp-object-storage: its storage type is azure/,
    );
    oneLine(result.stderr);
  });
});
