import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import yaml from "js-yaml";
import { CronJob } from "kubernetes-models/batch/v1/CronJob";
import type { V1EnvVar } from "@kubernetes/client-node";
import { compile, compileManifests } from "../../src/compiler/compile.js";
import type { CronJobManifest } from "../../src/compiler/cronjob.js";
import { resolveTargetBuckets } from "../../src/daemon/target-buckets.js";
import { parsePlans } from "../../src/plan/load.js";
import { mergePlans } from "../../src/plan/merge.js";
import { PlanError } from "../../src/plan/plan-error.js";
import { parseCnvrgApps } from "../../src/scanner/read-manifests.js";
import { scan } from "../../src/scanner/scan.js";
import { formatSkipped } from "../../src/scanner/fields.js";
import { capsule } from "../support/cli.js";
import { resolveContainerEnv, type EnvVar } from "../fakes/pod-env.js";
import { bucketAccess, bucketSpecFromSecret } from "../../src/runtime/bucket-access.js";
import { readRunTarget, runBucketAccess } from "../../src/runtime/run-target.js";

const FIXTURES = "fixtures/cnvrgapps-storage";
const text = (name: string) => readFileSync(`${FIXTURES}/${name}`, "utf8");
const scanned = (name: string) => scan(parseCnvrgApps(text(name), name));

/** The fixture's Secrets, by name. */
function secretsOf(name: string): Map<string, Record<string, string>> {
  const docs = yaml.loadAll(text(name)) as Array<{
    kind: string;
    metadata: { name: string };
    stringData: Record<string, string>;
  }>;
  return new Map(docs.filter((d) => d.kind === "Secret").map((d) => [d.metadata.name, d.stringData]));
}

/** Values that grant access: they must never reach a plan or a rendered CronJob. */
const SECRET_KEYS = [
  "CNVRG_STORAGE_AZURE_ACCESS_KEY",
  "CNVRG_STORAGE_ACCESS_KEY",
  "CNVRG_STORAGE_SECRET_KEY",
  "POSTGRES_PASSWORD",
  "CNVRG_REDIS_PASSWORD",
  "CNVRG_ES_PASS",
  "key.json",
];

function assertNoSecretValues(name: string, output: string): void {
  const values = [...secretsOf(name).values()].flatMap((data) =>
    SECRET_KEYS.map((key) => data[key]).filter((v): v is string => typeof v === "string" && v !== ""),
  );
  assert.ok(values.length >= 3, "the fixture has secrets to look for");
  for (const value of values) {
    assert.ok(!output.includes(value.trim()), `secret value leaked: ${value.slice(0, 12)}…`);
    // The key file's private key, in case a JSON form of it slipped through.
    if (value.includes("PRIVATE KEY")) assert.ok(!output.includes("NOT-A-REAL-KEY"), "private key leaked");
  }
}

const container = (m: CronJobManifest) => m.spec.jobTemplate.spec!.template.spec!.containers[0]!;
const envOf = (m: CronJobManifest) => new Map((container(m).env ?? []).map((e: V1EnvVar) => [e.name, e]));
const ref = (name: string, key: string, optional = false) => ({
  secretKeyRef: { name, key, ...(optional && { optional: true }) },
});

describe("storage types: a CnvrgApp on Azure Blob Storage", () => {
  const { plans, skipped } = scanned("azure.yaml");
  const manifests = compileManifests(plans);

  test("GIVEN spec.controlPlane.objectStorage.type azure WHEN scanned THEN the plan's storage is azure with cnvrg's Azure keys", () => {
    assert.deepEqual(skipped, []);
    assert.deepEqual(plans[0]?.spec.storage, {
      prefix: "capsule",
      type: "azure",
      bucketSecretRef: {
        secretName: "cp-object-storage",
        keys: {
          bucket: "CNVRG_STORAGE_AZURE_CONTAINER",
          account: "CNVRG_STORAGE_AZURE_ACCOUNT_NAME",
          endpoint: "CNVRG_STORAGE_ENDPOINT",
        },
      },
      credentialsSecretRef: {
        secretName: "cp-object-storage",
        keys: { accountKey: "CNVRG_STORAGE_AZURE_ACCESS_KEY" },
      },
    });
  });

  test("GIVEN the azure plan WHEN compiled THEN each CronJob reads container, account, endpoint and key through secretKeyRefs, and no S3 variable", () => {
    assert.equal(manifests.length, 2);
    for (const m of manifests) {
      const env = envOf(m);
      assert.deepEqual(
        env.get("CAPSULE_AZURE_CONTAINER")?.valueFrom,
        ref("cp-object-storage", "CNVRG_STORAGE_AZURE_CONTAINER"),
      );
      assert.deepEqual(
        env.get("AZURE_STORAGE_ACCOUNT")?.valueFrom,
        ref("cp-object-storage", "CNVRG_STORAGE_AZURE_ACCOUNT_NAME"),
      );
      assert.deepEqual(
        env.get("CAPSULE_AZURE_ENDPOINT")?.valueFrom,
        ref("cp-object-storage", "CNVRG_STORAGE_ENDPOINT", true),
      );
      // Optional: an empty or absent key is DefaultAzureCredential (workload identity).
      assert.deepEqual(
        env.get("AZURE_STORAGE_KEY")?.valueFrom,
        ref("cp-object-storage", "CNVRG_STORAGE_AZURE_ACCESS_KEY", true),
      );
      for (const s3 of [
        "CAPSULE_S3_BUCKET",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ENDPOINT_URL_S3",
      ]) {
        assert.equal(env.get(s3), undefined, s3);
      }
      const target = JSON.parse(env.get("CAPSULE_TARGET")?.value ?? "{}") as { storage: unknown };
      assert.deepEqual(target.storage, { prefix: "capsule", type: "azure" });
      // Nothing to mount for Azure: only /tmp.
      assert.deepEqual(
        m.spec.jobTemplate.spec!.template.spec!.volumes?.map((v) => v.name),
        ["tmp"],
      );
      new CronJob(m as never).validate();
    }
  });

  test("GIVEN a compiled azure CronJob WHEN its pod's env is built from the fixture's Secrets THEN capsule run opens what --cluster opens from the Secret", () => {
    const secrets = secretsOf("azure.yaml");
    for (const m of manifests) {
      const env = resolveContainerEnv(container(m).env as EnvVar[], (name) => secrets.get(name));
      const fromPod = runBucketAccess(readRunTarget(env), env);
      const fromSecret = bucketAccess(
        bucketSpecFromSecret(secrets.get("cp-object-storage")!, "x"),
        "capsule",
      );
      assert.deepEqual(fromPod, fromSecret);
      assert.equal(fromPod.url, "azure://cnvrg-storage/capsule");
      assert.equal(fromPod.env["AZURE_STORAGE_ACCOUNT"], "cnvrgbackups");
    }
  });

  test("GIVEN the azure fixture's Secrets WHEN the plan and CronJobs are rendered THEN none of their secret values appears", () => {
    assertNoSecretValues("azure.yaml", compile(plans) + JSON.stringify(plans));
  });
});

describe("storage types: a CnvrgApp on Google Cloud Storage", () => {
  const { plans, skipped } = scanned("gcp.yaml");
  const manifests = compileManifests(plans);

  test("GIVEN type gcp and gcpSecretRef WHEN scanned THEN the plan's storage is gcs, its credentials the key Secret's key.json", () => {
    assert.deepEqual(skipped, []);
    assert.deepEqual(plans[0]?.spec.storage, {
      prefix: "capsule",
      type: "gcs",
      bucketSecretRef: { secretName: "cp-object-storage", keys: { bucket: "CNVRG_STORAGE_BUCKET" } },
      credentialsSecretRef: { secretName: "gcs-backup-key", keys: { keyFile: "key.json" } },
    });
  });

  test("GIVEN the gcs plan WHEN compiled THEN the key Secret is mounted read-only (0400) and GOOGLE_APPLICATION_CREDENTIALS points at it", () => {
    assert.equal(manifests.length, 2);
    for (const m of manifests) {
      const pod = m.spec.jobTemplate.spec!.template.spec!;
      assert.deepEqual(pod.volumes?.[1], {
        name: "gcs-key",
        secret: {
          secretName: "gcs-backup-key",
          items: [{ key: "key.json", path: "key.json" }],
          defaultMode: 0o400,
        },
      });
      assert.deepEqual(container(m).volumeMounts?.[1], {
        name: "gcs-key",
        mountPath: "/var/run/secrets/capsule/gcs",
        readOnly: true,
      });
      const env = envOf(m);
      assert.deepEqual(env.get("GOOGLE_APPLICATION_CREDENTIALS"), {
        name: "GOOGLE_APPLICATION_CREDENTIALS",
        value: "/var/run/secrets/capsule/gcs/key.json",
      });
      assert.deepEqual(
        env.get("CAPSULE_GCS_BUCKET")?.valueFrom,
        ref("cp-object-storage", "CNVRG_STORAGE_BUCKET"),
      );
      assert.equal(env.get("CAPSULE_S3_BUCKET"), undefined);
      new CronJob(m as never).validate();
    }
  });

  test("GIVEN a compiled gcs CronJob WHEN its pod's env is built THEN capsule run opens gs://BUCKET/capsule with the mounted key file", () => {
    const secrets = secretsOf("gcp.yaml");
    for (const m of manifests) {
      const env = resolveContainerEnv(container(m).env as EnvVar[], (name) => secrets.get(name));
      const access = runBucketAccess(readRunTarget(env), env);
      assert.equal(access.url, "gs://cnvrg-gcs-storage/capsule");
      assert.equal(access.env["GOOGLE_APPLICATION_CREDENTIALS"], "/var/run/secrets/capsule/gcs/key.json");
    }
  });

  test("GIVEN the gcp fixture's Secrets WHEN the plan and CronJobs are rendered THEN no secret value, and no key file content, appears", () => {
    assertNoSecretValues("gcp.yaml", compile(plans) + JSON.stringify(plans));
  });

  test("GIVEN a compiled gcs CronJob WHEN the daemon resolves its bucket THEN it reads the key volume's Secret into memory, not a path", async () => {
    const secrets = secretsOf("gcp.yaml");
    const read: string[] = [];
    const { buckets, problems } = await resolveTargetBuckets(manifests, (namespace, name) => {
      read.push(`${namespace}/${name}`);
      const data = secrets.get(name);
      if (!data) return Promise.reject(Object.assign(new Error(`no Secret ${name}`), { status: 404 }));
      return Promise.resolve(data);
    });
    assert.deepEqual(problems, []);
    assert.deepEqual([...new Set(read)].sort(), ["cnvrg-gcp/cp-object-storage", "cnvrg-gcp/gcs-backup-key"]);
    assert.equal(buckets.length, 2);
    for (const bucket of buckets) {
      assert.match(bucket.key, /\|gcs\|cnvrg-gcs-storage\|/);
      assert.ok(!bucket.key.includes("PRIVATE"), "the key's digest, never the key, identifies the bucket");
    }
  });
});

describe("storage types: the scanner's choices", () => {
  const app = (objectStorage: unknown, backup: Record<string, unknown> = {}) => ({
    apiVersion: "mlops.cnvrg.io/v1",
    kind: "CnvrgApp",
    metadata: { name: "a", namespace: "ns" },
    spec: {
      controlPlane: { objectStorage },
      dbs: {
        pg: { enabled: true, backup: { enabled: true } },
        redis: { enabled: true, backup: { enabled: true, ...backup } },
      },
    },
  });

  test("GIVEN an unknown objectStorage.type WHEN scanned THEN the app is skipped with one line naming the field and value", () => {
    const { plans, skipped } = scan([app({ type: "ceph" })]);
    assert.deepEqual(plans, []);
    assert.deepEqual(skipped.map(formatSkipped), [
      'skipped CnvrgApp ns/a: spec.controlPlane.objectStorage.type must be one of minio, aws, azure, gcp (got "ceph")',
    ]);
  });

  test("GIVEN no objectStorage WHEN scanned THEN cnvrg's default (minio): S3, the plan as it always was", () => {
    const { plans } = scan([app(undefined)]);
    assert.equal(plans[0]?.spec.storage.type, undefined);
    assert.equal(plans[0]?.spec.storage.bucketSecretRef?.keys.bucket, "CNVRG_STORAGE_BUCKET");
  });

  test("GIVEN type gcp without gcpSecretRef WHEN scanned THEN cnvrg's default key Secret, gcp-storage-secret", () => {
    const { plans } = scan([app({ type: "gcp" })]);
    assert.equal(plans[0]?.spec.storage.credentialsSecretRef?.secretName, "gcp-storage-secret");
  });

  test("GIVEN an azure app whose redis names another bucket Secret WHEN scanned THEN that target stays S3: the operator writes only cp-object-storage from the spec", () => {
    const { plans } = scan([app({ type: "azure" }, { bucketRef: "redis-bucket" })]);
    const redis = plans[0]?.spec.targets.find((t) => t.name === "redis");
    assert.equal(plans[0]?.spec.storage.type, "azure");
    assert.equal(redis?.storage?.type, "s3");
    assert.deepEqual(redis?.storage?.credentialsSecretRef?.keys, {
      accessKeyId: "CNVRG_STORAGE_ACCESS_KEY",
      secretAccessKey: "CNVRG_STORAGE_SECRET_KEY",
    });
    const env = envOf(compileManifests(plans).find((m) => m.metadata.name.endsWith("-redis"))!);
    assert.deepEqual(env.get("CAPSULE_S3_BUCKET")?.valueFrom, ref("redis-bucket", "CNVRG_STORAGE_BUCKET"));
    assert.equal(env.get("CAPSULE_AZURE_CONTAINER"), undefined);
  });
});

describe("storage types: hand-written plans", () => {
  const plan = (storage: Record<string, unknown>) =>
    yaml.dump({
      apiVersion: "capsule.cnvrg.io/v1",
      kind: "BackupPlan",
      metadata: { cluster: "ns.app" },
      spec: {
        storage,
        targets: [{ name: "pg", engine: "postgresql", namespace: "ns", connection: { host: "pg" } }],
      },
    });
  function problemsOf(storage: Record<string, unknown>): string[] {
    try {
      mergePlans([], parsePlans(plan(storage), "plans/ml.yaml"));
    } catch (error) {
      if (error instanceof PlanError) return [...error.problems];
      throw error;
    }
    return [];
  }

  test("GIVEN S3-only fields on an azure storage WHEN loaded THEN each is named", () => {
    assert.deepEqual(
      problemsOf({ type: "azure", bucket: "backups", account: "acct1", region: "eu", pathStyle: true }),
      [
        'plans/ml.yaml: /spec/storage/region is not used by storage type azure (got "eu")',
        "plans/ml.yaml: /spec/storage/pathStyle is not used by storage type azure (got true)",
      ],
    );
  });

  test("GIVEN a secret role of another type WHEN loaded THEN it is named", () => {
    assert.deepEqual(
      problemsOf({
        type: "gcs",
        bucket: "backups",
        credentialsSecretRef: { secretName: "k", keys: { accessKeyId: "AK" } },
      }),
      [
        'plans/ml.yaml: /spec/storage/credentialsSecretRef/keys/accessKeyId is not used by storage type gcs (got "AK")',
      ],
    );
  });

  test("GIVEN azure with neither an account nor a bucket Secret WHEN loaded THEN the storage says what it needs", () => {
    assert.deepEqual(problemsOf({ type: "azure", bucket: "backups" }), [
      "plans/ml.yaml: /spec/storage must name an account or a bucketSecretRef for azure",
    ]);
  });

  test("GIVEN a target on another storage type than its plan WHEN it names no bucket or credentials of its own THEN both are asked for", () => {
    const text = yaml.dump({
      apiVersion: "capsule.cnvrg.io/v1",
      kind: "BackupPlan",
      metadata: { cluster: "ns.app" },
      spec: {
        storage: {
          type: "azure",
          bucketSecretRef: { secretName: "az" },
          credentialsSecretRef: { secretName: "az" },
        },
        targets: [
          {
            name: "pg",
            engine: "postgresql",
            namespace: "ns",
            connection: { host: "pg" },
            storage: { type: "s3" },
          },
        ],
      },
    });
    assert.throws(
      () => mergePlans([], parsePlans(text, "plans/ml.yaml")),
      (error: PlanError) => {
        assert.deepEqual(error.problems, [
          "plans/ml.yaml: /spec/targets/0/storage must name its own bucket or bucketSecretRef: it is s3, the plan's storage azure",
          "plans/ml.yaml: /spec/targets/0/storage must name its own credentialsSecretRef: it is s3, the plan's storage azure",
        ]);
        return true;
      },
    );
  });

  test("GIVEN a plain azure plan WHEN compiled THEN container and account are plain values, the key a secretKeyRef", () => {
    const plans = mergePlans(
      [],
      parsePlans(
        plan({
          type: "azure",
          bucket: "backups",
          account: "acct1",
          credentialsSecretRef: { secretName: "az" },
        }),
        "plans/ml.yaml",
      ),
    );
    const env = envOf(compileManifests(plans)[0]!);
    assert.equal(env.get("CAPSULE_AZURE_CONTAINER")?.value, "backups");
    assert.equal(env.get("AZURE_STORAGE_ACCOUNT")?.value, "acct1");
    assert.deepEqual(
      env.get("AZURE_STORAGE_KEY")?.valueFrom,
      ref("az", "CNVRG_STORAGE_AZURE_ACCESS_KEY", true),
    );
  });
});

describe("storage types: capsule plan --dry-run", () => {
  test("GIVEN CnvrgApps on Azure and GCS WHEN `plan --dry-run --from-files` runs THEN it prints their CronJobs, secretKeyRefs and the key mount, and no secret", async () => {
    const noPlans = await mkdtemp(join(tmpdir(), "capsule-noplans-"));
    const { code, stdout, stderr } = await capsule([
      "plan",
      "--dry-run",
      "--from-files",
      FIXTURES,
      "--plans",
      noPlans,
    ]);
    assert.equal(code, 0, stderr);
    assert.equal(stderr, "");
    const names = yaml.loadAll(stdout).map((d) => (d as CronJobManifest).metadata.name);
    assert.deepEqual(names.sort(), [
      "capsule-cnvrg-azure-azure-app-postgresql",
      "capsule-cnvrg-azure-azure-app-redis",
      "capsule-cnvrg-gcp-gcp-app-elasticsearch",
      "capsule-cnvrg-gcp-gcp-app-postgresql",
    ]);
    assert.match(stdout, /key: CNVRG_STORAGE_AZURE_ACCESS_KEY/);
    assert.match(stdout, /secretName: gcs-backup-key/);
    assertNoSecretValues("azure.yaml", stdout);
    assertNoSecretValues("gcp.yaml", stdout);
  });
});
