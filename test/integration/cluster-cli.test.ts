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
