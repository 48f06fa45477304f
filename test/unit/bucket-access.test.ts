import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { bucketAccess, bucketSpecFromSecret, gcsKeyJson, withEnv } from "../../src/runtime/bucket-access.js";
import { runBucketAccess } from "../../src/runtime/run-target.js";
import { CapsuleError } from "../../src/domain/errors.js";
import { redact } from "../../src/redact.js";
import type { RunTarget } from "../../src/plan/run-contract.js";

const WHERE = "cnvrg/cp-object-storage";
const ACCESS = "AKIAEXAMPLEACCESS";
const SECRET = "s3-secret-key-example";
const AZURE_KEY = "azure-account-key-example==";

/** cp-object-storage as the cnvrg operator writes it: every key, empty where the type does not use it. */
function cnvrgSecret(type: string | undefined, over: Record<string, string> = {}): Record<string, string> {
  return {
    ...(type !== undefined && { CNVRG_STORAGE_TYPE: type }),
    CNVRG_STORAGE_ENDPOINT: "http://minio.apps.example.com",
    CNVRG_STORAGE_BUCKET: "cnvrg-storage",
    CNVRG_STORAGE_REGION: "eastus",
    CNVRG_STORAGE_ACCESS_KEY: "",
    CNVRG_STORAGE_SECRET_KEY: "",
    CNVRG_STORAGE_AZURE_ACCESS_KEY: "",
    CNVRG_STORAGE_AZURE_ACCOUNT_NAME: "",
    CNVRG_STORAGE_AZURE_CONTAINER: "",
    CNVRG_STORAGE_KEYFILE: "/opt/app-root/conf/gcp-keyfile/key.json",
    CNVRG_STORAGE_PROJECT: "",
    CNVRG_STORAGE_GCP_SECRET_REF: "gcp-storage-secret",
    ...over,
  };
}

/** A Secret for Azure as the operator writes it (its MinIO fallback endpoint included). */
const azure = (over: Record<string, string> = {}) =>
  cnvrgSecret("azure", {
    CNVRG_STORAGE_AZURE_ACCOUNT_NAME: "cnvrgbackups",
    CNVRG_STORAGE_AZURE_CONTAINER: "backups",
    CNVRG_STORAGE_AZURE_ACCESS_KEY: AZURE_KEY,
    ...over,
  });

const access = (secret: Record<string, string>) =>
  bucketAccess(bucketSpecFromSecret(secret, WHERE), "capsule");

/** Asserts a Config error whose one line matches `pattern` and holds none of `secrets`. */
function assertConfigError(fn: () => unknown, pattern: RegExp, secrets: string[] = []): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof CapsuleError, String(error));
    assert.equal(error.code, "CAPSULE_CONFIG");
    assert.match(error.message, pattern);
    assert.ok(!error.message.includes("\n"), "one line");
    for (const secret of secrets) assert.ok(!error.message.includes(secret), `leaked ${secret}`);
    return true;
  });
}

describe("bucket access: cnvrg's bucket Secret by CNVRG_STORAGE_TYPE", () => {
  test("GIVEN minio with both keys WHEN mapped THEN an s3 URL with the Secret's endpoint, region and keys, no env", () => {
    const a = access(
      cnvrgSecret("minio", { CNVRG_STORAGE_ACCESS_KEY: ACCESS, CNVRG_STORAGE_SECRET_KEY: SECRET }),
    );
    assert.equal(a.url, "s3://cnvrg-storage/capsule");
    assert.deepEqual(a.overrides, {
      endpoint: "http://minio.apps.example.com",
      region: "eastus",
      credentials: { accessKeyId: ACCESS, secretAccessKey: SECRET },
    });
    assert.deepEqual(a.env, {});
  });

  test("GIVEN aws with both keys empty WHEN mapped THEN no credentials: the AWS chain (IRSA) decides", () => {
    const a = access(cnvrgSecret("aws", { CNVRG_STORAGE_ENDPOINT: "s3.amazonaws.com" }));
    assert.equal(a.url, "s3://cnvrg-storage/capsule");
    assert.equal(a.overrides.credentials, undefined);
    // No scheme: HTTPS, as for every cnvrg endpoint.
    assert.equal(a.overrides.endpoint, "https://s3.amazonaws.com");
  });

  test("GIVEN a Secret older than CNVRG_STORAGE_TYPE WHEN mapped THEN it is S3-compatible, as before", () => {
    const a = access(
      cnvrgSecret(undefined, { CNVRG_STORAGE_ACCESS_KEY: ACCESS, CNVRG_STORAGE_SECRET_KEY: SECRET }),
    );
    assert.equal(a.url, "s3://cnvrg-storage/capsule");
    assert.deepEqual(a.overrides.credentials, { accessKeyId: ACCESS, secretAccessKey: SECRET });
  });

  test("GIVEN an unknown CNVRG_STORAGE_TYPE WHEN mapped THEN one error naming the key, the value and the known types", () => {
    assertConfigError(
      () => access(cnvrgSecret("ceph")),
      /^Secret cnvrg\/cp-object-storage: CNVRG_STORAGE_TYPE must be one of minio, aws, azure, gcp \(got "ceph"\)$/,
    );
    // An inherited Object property is not a type either.
    assertConfigError(() => access(cnvrgSecret("toString")), /CNVRG_STORAGE_TYPE must be one of/);
  });

  for (const [given, over, empty, set, secret] of [
    [
      "only the access key",
      { CNVRG_STORAGE_ACCESS_KEY: ACCESS },
      "CNVRG_STORAGE_SECRET_KEY",
      "CNVRG_STORAGE_ACCESS_KEY",
      ACCESS,
    ],
    [
      "only the secret key",
      { CNVRG_STORAGE_SECRET_KEY: SECRET },
      "CNVRG_STORAGE_ACCESS_KEY",
      "CNVRG_STORAGE_SECRET_KEY",
      SECRET,
    ],
  ] as const) {
    test(`GIVEN ${given} WHEN mapped THEN an error names the empty key and never a value`, () => {
      assertConfigError(
        () => access(cnvrgSecret("aws", over)),
        new RegExp(`^Secret cnvrg/cp-object-storage: ${empty} is empty but ${set} is set`),
        [secret],
      );
    });
  }

  test("GIVEN minio without a bucket WHEN mapped THEN the error names CNVRG_STORAGE_BUCKET", () => {
    assertConfigError(
      () => access(cnvrgSecret("minio", { CNVRG_STORAGE_BUCKET: "" })),
      /Secret cnvrg\/cp-object-storage: CNVRG_STORAGE_BUCKET is empty or missing/,
    );
  });

  test("GIVEN azure with an account key WHEN mapped THEN azure://CONTAINER/PREFIX with account and key, the other forms unset", () => {
    const a = access(azure());
    // The container, not cnvrg's generic CNVRG_STORAGE_BUCKET; the MinIO fallback endpoint is not the account's.
    assert.equal(a.url, "azure://backups/capsule");
    assert.deepEqual(a.overrides, {});
    assert.deepEqual(a.env, {
      AZURE_STORAGE_CONNECTION_STRING: undefined,
      AZURE_STORAGE_ACCOUNT: "cnvrgbackups",
      AZURE_STORAGE_KEY: AZURE_KEY,
      AZURE_STORAGE_SAS_TOKEN: undefined,
    });
    const env = withEnv(
      {
        AZURE_STORAGE_CONNECTION_STRING: "UseDevelopmentStorage=true",
        AZURE_STORAGE_SAS_TOKEN: "sv=x",
        HOME: "/h",
      },
      a.env,
    );
    assert.deepEqual(env, {
      HOME: "/h",
      AZURE_STORAGE_ACCOUNT: "cnvrgbackups",
      AZURE_STORAGE_KEY: AZURE_KEY,
    });
  });

  test("GIVEN azure with an empty access key WHEN mapped THEN the account alone: DefaultAzureCredential (workload identity)", () => {
    const a = access(azure({ CNVRG_STORAGE_AZURE_ACCESS_KEY: "" }));
    assert.equal(a.url, "azure://backups/capsule");
    assert.equal(a.env["AZURE_STORAGE_ACCOUNT"], "cnvrgbackups");
    assert.equal(a.env["AZURE_STORAGE_KEY"], undefined);
    assert.equal(withEnv({ AZURE_STORAGE_KEY: "stale" }, a.env)["AZURE_STORAGE_KEY"], undefined);
  });

  for (const endpoint of [
    "http://127.0.0.1:10000/cnvrgbackups",
    "https://cnvrgbackups.blob.local.azurestack.external/",
  ]) {
    test(`GIVEN azure with the Blob endpoint ${endpoint} WHEN mapped THEN a connection string with BlobEndpoint, nothing else`, () => {
      const a = access(azure({ CNVRG_STORAGE_ENDPOINT: endpoint }));
      const trimmed = endpoint.replace(/\/$/, "");
      const protocol = endpoint.split(":")[0];
      assert.deepEqual(a.env, {
        AZURE_STORAGE_CONNECTION_STRING: `DefaultEndpointsProtocol=${protocol};AccountName=cnvrgbackups;AccountKey=${AZURE_KEY};BlobEndpoint=${trimmed}`,
        AZURE_STORAGE_ACCOUNT: undefined,
        AZURE_STORAGE_KEY: undefined,
        AZURE_STORAGE_SAS_TOKEN: undefined,
      });
      // The connection string carries the key: it is registered for redaction.
      assert.equal(redact(`x ${a.env["AZURE_STORAGE_CONNECTION_STRING"]} y`), "x *** y");
    });
  }

  test("GIVEN azure with public Azure's own endpoint and no key WHEN mapped THEN the account alone: no connection string needed", () => {
    const a = access(
      azure({
        CNVRG_STORAGE_ENDPOINT: "https://cnvrgbackups.blob.core.windows.net",
        CNVRG_STORAGE_AZURE_ACCESS_KEY: "",
      }),
    );
    assert.equal(a.env["AZURE_STORAGE_ACCOUNT"], "cnvrgbackups");
    assert.equal(a.env["AZURE_STORAGE_CONNECTION_STRING"], undefined);
  });

  test("GIVEN azure with a Blob endpoint but no key WHEN mapped THEN an error names the empty key", () => {
    assertConfigError(
      () =>
        access(
          azure({
            CNVRG_STORAGE_ENDPOINT: "http://127.0.0.1:10000/cnvrgbackups",
            CNVRG_STORAGE_AZURE_ACCESS_KEY: "",
          }),
        ),
      /Secret cnvrg\/cp-object-storage: CNVRG_STORAGE_AZURE_ACCESS_KEY is empty: the Blob endpoint http:\/\/127\.0\.0\.1:10000\/cnvrgbackups needs the account key/,
    );
  });

  for (const key of ["CNVRG_STORAGE_AZURE_ACCOUNT_NAME", "CNVRG_STORAGE_AZURE_CONTAINER"]) {
    test(`GIVEN azure without ${key} WHEN mapped THEN the error names it and not the account key`, () => {
      assertConfigError(() => access(azure({ [key]: "" })), new RegExp(`${key} is empty or missing`), [
        AZURE_KEY,
      ]);
    });
  }

  test("GIVEN gcp WHEN mapped from the Secret THEN the bucket and the key Secret it names, still to be read", () => {
    const spec = bucketSpecFromSecret(
      cnvrgSecret("gcp", {
        CNVRG_STORAGE_BUCKET: "gcs-bucket",
        CNVRG_STORAGE_GCP_SECRET_REF: "gcs-backup-key",
      }),
      WHERE,
    );
    assert.deepEqual(spec, { type: "gcs", bucket: "gcs-bucket", keySecret: "gcs-backup-key" });
  });

  test("GIVEN gcp with the key file's content WHEN mapped THEN gs://BUCKET/PREFIX with CAPSULE_GCS_CREDENTIALS_JSON and no key file path", () => {
    const keyJson =
      '{"type":"service_account","private_key":"-----BEGIN PRIVATE KEY-----\\nK\\n-----END PRIVATE KEY-----\\n"}';
    const a = bucketAccess({ type: "gcs", bucket: "gcs-bucket", keyJson }, "capsule");
    assert.equal(a.url, "gs://gcs-bucket/capsule");
    assert.deepEqual(a.env, {
      CAPSULE_GCS_CREDENTIALS_JSON: keyJson,
      GOOGLE_APPLICATION_CREDENTIALS: undefined,
    });
  });

  test("GIVEN gcp without a key Secret WHEN mapped THEN nothing is set: Application Default Credentials", () => {
    const spec = bucketSpecFromSecret(cnvrgSecret("gcp", { CNVRG_STORAGE_GCP_SECRET_REF: "" }), WHERE);
    assert.deepEqual(spec, { type: "gcs", bucket: "cnvrg-storage" });
    assert.deepEqual(bucketAccess(spec, "capsule").env, {});
  });

  test("GIVEN a key file that is not JSON WHEN checked THEN the error names the Secret key, never the content", () => {
    const raw = "not-json-private-material";
    assertConfigError(
      () => gcsKeyJson(raw, "Secret cnvrg/gcs-backup-key: key.json"),
      /^Secret cnvrg\/gcs-backup-key: key\.json is not a JSON key file$/,
      [raw],
    );
  });

  test("GIVEN a key file WHEN checked THEN its private key, unescaped, is registered for redaction", () => {
    const privateKey = "-----BEGIN PRIVATE KEY-----\nunit-test-private-key\n-----END PRIVATE KEY-----\n";
    gcsKeyJson(JSON.stringify({ type: "service_account", private_key: privateKey }), "k");
    assert.equal(redact(`got ${privateKey}`), "got ***");
  });
});

describe("bucket access: capsule run's env, per storage type", () => {
  const target = (storage: RunTarget["storage"]): RunTarget => ({
    version: 1,
    cluster: "cnvrg.app",
    target: "postgresql",
    engine: "postgresql",
    namespace: "cnvrg",
    connection: { host: "postgres", port: 5432 },
    retention: { keepLast: 5, failedGraceHours: 72 },
    storage,
  });

  test("GIVEN an s3 target WHEN mapped THEN the URL and settings are what capsule run always opened", () => {
    const a = runBucketAccess(target({ prefix: "capsule", region: "eu-west-1", pathStyle: true }), {
      CAPSULE_S3_BUCKET: "b1",
      AWS_ENDPOINT_URL_S3: "minio.cnvrg:9000",
    });
    assert.equal(a.url, "s3://b1/capsule");
    assert.deepEqual(a.overrides, {
      endpoint: "https://minio.cnvrg:9000",
      region: "eu-west-1",
      forcePathStyle: true,
    });
    assert.deepEqual(a.env, { AWS_ENDPOINT_URL_S3: "https://minio.cnvrg:9000" });
  });

  test("GIVEN an s3 target whose Secret gives one key only WHEN mapped THEN the error names the empty variable", () => {
    assertConfigError(
      () =>
        runBucketAccess(target({ prefix: "capsule" }), {
          CAPSULE_S3_BUCKET: "b1",
          AWS_ACCESS_KEY_ID: ACCESS,
          AWS_SECRET_ACCESS_KEY: "",
        }),
      /^AWS_SECRET_ACCESS_KEY is empty but AWS_ACCESS_KEY_ID is set/,
      [ACCESS],
    );
  });

  test("GIVEN an azure target WHEN mapped from the pod's env THEN the same URL and variables as from the Secret", () => {
    const env = {
      CAPSULE_AZURE_CONTAINER: "backups",
      AZURE_STORAGE_ACCOUNT: "cnvrgbackups",
      AZURE_STORAGE_KEY: AZURE_KEY,
      CAPSULE_AZURE_ENDPOINT: "http://minio.apps.example.com",
    };
    const fromEnv = runBucketAccess(target({ type: "azure", prefix: "capsule" }), env);
    assert.deepEqual(fromEnv, access(azure()));
    // An optional secretKeyRef to an empty key gives "": DefaultAzureCredential.
    const ambient = runBucketAccess(target({ type: "azure", prefix: "p" }), {
      ...env,
      AZURE_STORAGE_KEY: "",
    });
    assert.equal(ambient.url, "azure://backups/p");
    assert.equal(ambient.env["AZURE_STORAGE_KEY"], undefined);
  });

  test("GIVEN an azure target without a container WHEN mapped THEN the error names the variable", () => {
    assertConfigError(
      () => runBucketAccess(target({ type: "azure", prefix: "capsule" }), { AZURE_STORAGE_ACCOUNT: "a12" }),
      /^CAPSULE_AZURE_CONTAINER is empty or missing$/,
    );
  });

  test("GIVEN a gcs target in a pod WHEN mapped THEN gs://BUCKET/PREFIX and the mounted key file", () => {
    const a = runBucketAccess(target({ type: "gcs", prefix: "capsule" }), {
      CAPSULE_GCS_BUCKET: "gcs-bucket",
      GOOGLE_APPLICATION_CREDENTIALS: "/var/run/secrets/capsule/gcs/key.json",
    });
    assert.equal(a.url, "gs://gcs-bucket/capsule");
    assert.deepEqual(a.env, {
      GOOGLE_APPLICATION_CREDENTIALS: "/var/run/secrets/capsule/gcs/key.json",
      CAPSULE_GCS_CREDENTIALS_JSON: undefined,
    });
  });

  test("GIVEN a gcs target without its bucket WHEN mapped THEN the error names CAPSULE_GCS_BUCKET", () => {
    assertConfigError(
      () => runBucketAccess(target({ type: "gcs", prefix: "capsule" }), {}),
      /^CAPSULE_GCS_BUCKET is not set/,
    );
  });
});
