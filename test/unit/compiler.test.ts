import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import yaml from "js-yaml";
import { CronJob } from "kubernetes-models/batch/v1/CronJob";
import { canonicalJson, sha256Hex } from "../../src/compiler/canonical-json.js";
import { compile, compileManifests } from "../../src/compiler/compile.js";
import { ANNOTATIONS, LABELS, type CronJobManifest } from "../../src/compiler/cronjob.js";
import { loadPlans } from "../../src/plan/load.js";
import { mergePlans } from "../../src/plan/merge.js";
import type { BackupPlan } from "../../src/plan/types.js";
import { parseCnvrgApps } from "../../src/scanner/read-manifests.js";
import { scan } from "../../src/scanner/scan.js";
import { CapsuleError } from "../../src/domain/errors.js";

const FIXTURES = new URL("../../fixtures/cnvrgapps/", import.meta.url);
const read = (name: string) => readFileSync(new URL(name, FIXTURES), "utf8");
const APPS = ["full.yaml", "pg-only-defaults.yaml", "backups-disabled.yaml", "broken-period.yaml"].flatMap(
  (f) => parseCnvrgApps(read(f), f),
);
const scanned = scan(APPS).plans;
const example = mergePlans([], await loadPlans("plans"));
const ALL_PLANS: BackupPlan[] = [...scanned, ...example];

const DNS_1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const podOf = (c: CronJobManifest) => c.spec.jobTemplate.spec!.template.spec!;
const containerOf = (c: CronJobManifest) => podOf(c).containers[0]!;
const envOf = (c: CronJobManifest) => Object.fromEntries((containerOf(c).env ?? []).map((e) => [e.name, e]));
const byName = (name: string) => compileManifests(ALL_PLANS).find((c) => c.metadata.name === name)!;

describe("compiled CronJobs", () => {
  const manifests = compileManifests(ALL_PLANS);

  test("GIVEN the fixtures and the example WHEN compiled THEN one CronJob per target, and one per verify schedule", () => {
    assert.equal(manifests.length, 4 + 3 + 1);
    assert.deepEqual(
      yaml.loadAll(compile(ALL_PLANS)).map((d) => (d as CronJobManifest).metadata.name),
      manifests.map((m) => m.metadata.name),
    );
  });

  for (const manifest of manifests) {
    test(`GIVEN ${manifest.metadata.name} WHEN validated against the Kubernetes schema (kubernetes-models) THEN it is valid`, () => {
      new CronJob(manifest as never).validate();
    });
  }

  test("GIVEN every CronJob WHEN checked THEN names are DNS-1123 and ≤ 52, label values valid and ≤ 63", () => {
    for (const m of manifests) {
      assert.ok(m.metadata.name.length <= 52 && DNS_1123_LABEL.test(m.metadata.name), m.metadata.name);
      for (const value of Object.values(m.metadata.labels))
        assert.ok(value.length <= 63 && LABEL_VALUE.test(value), value);
    }
  });

  test("GIVEN the scanned full app WHEN compiled THEN names, labels and annotations follow docs/design.md §5", () => {
    const m = byName("capsule-cnvrg-cnvrg-app-redis");
    assert.equal(m.metadata.namespace, "cnvrg");
    assert.deepEqual(m.metadata.labels, {
      [LABELS.managedBy]: "capsule",
      [LABELS.name]: "capsule",
      [LABELS.cluster]: "cnvrg.cnvrg-app",
      [LABELS.target]: "redis",
      [LABELS.engine]: "redis",
    });
    assert.equal(m.metadata.annotations[ANNOTATIONS.cluster], "cnvrg.cnvrg-app");
    assert.deepEqual(containerOf(m).args, ["run", "--cluster", "cnvrg.cnvrg-app", "--target", "redis"]);
  });

  test("GIVEN a CronJob WHEN its spec-hash is recomputed from the rest of the object THEN it matches", () => {
    for (const m of manifests) {
      const { [ANNOTATIONS.specHash]: hash, ...rest } = m.metadata.annotations;
      assert.equal(hash, sha256Hex(canonicalJson({ ...m, metadata: { ...m.metadata, annotations: rest } })));
    }
  });

  test("GIVEN a changed retention WHEN compiled THEN the spec-hash changes; GIVEN no change THEN it does not", () => {
    const plan = scanned.find((p) => p.metadata.cluster === "cnvrg-team-a.team-a")!;
    const target = plan.spec.targets[0]!;
    const changed = { ...plan, spec: { ...plan.spec, targets: [{ ...target, retention: { keepLast: 9 } }] } };
    const hash = (p: BackupPlan) => compileManifests([p])[0]!.metadata.annotations[ANNOTATIONS.specHash];
    assert.equal(hash(plan), hash(structuredClone(plan)));
    assert.notEqual(hash(plan), hash(changed));
  });

  test("GIVEN any CronJob WHEN inspected THEN job policy and pod hardening are as docs/design.md §5 says", () => {
    for (const m of manifests) {
      const spec = m.spec;
      const job = spec.jobTemplate.spec!;
      const pod = podOf(m);
      const container = containerOf(m);
      assert.equal(spec.concurrencyPolicy, "Forbid");
      assert.equal(spec.timeZone, "Etc/UTC");
      assert.ok(
        spec.startingDeadlineSeconds! > 0 &&
          spec.successfulJobsHistoryLimit! >= 0 &&
          spec.failedJobsHistoryLimit! >= 0,
      );
      assert.ok(job.backoffLimit! >= 0 && job.activeDeadlineSeconds! > 0 && job.ttlSecondsAfterFinished! > 0);
      assert.equal(pod.restartPolicy, "Never");
      assert.equal(pod.automountServiceAccountToken, false);
      assert.equal(pod.securityContext?.runAsNonRoot, true);
      assert.ok(pod.securityContext?.runAsUser && pod.securityContext.fsGroup !== undefined);
      assert.equal(pod.securityContext?.seccompProfile?.type, "RuntimeDefault");
      assert.deepEqual(container.securityContext?.capabilities?.drop, ["ALL"]);
      assert.equal(container.securityContext?.allowPrivilegeEscalation, false);
      assert.equal(container.securityContext?.readOnlyRootFilesystem, true);
      assert.deepEqual(container.volumeMounts, [{ mountPath: "/tmp", name: "tmp" }]);
      assert.ok(pod.volumes?.[0]?.emptyDir);
      assert.ok(container.resources?.requests?.["memory"] && container.resources.limits?.["memory"]);
    }
  });
});

describe("the env contract", () => {
  const secretRef = (name: string, key: string, optional?: true) => ({
    valueFrom: { secretKeyRef: { name, key, ...(optional && { optional }) } },
  });
  const cases: Array<[string, string, Record<string, object>]> = [
    [
      "scanned postgresql",
      "capsule-cnvrg-cnvrg-app-postgresql",
      {
        CAPSULE_S3_BUCKET: secretRef("cp-object-storage", "CNVRG_STORAGE_BUCKET"),
        AWS_ENDPOINT_URL_S3: secretRef("cp-object-storage", "CNVRG_STORAGE_ENDPOINT", true),
        AWS_REGION: secretRef("cp-object-storage", "CNVRG_STORAGE_REGION", true),
        AWS_ACCESS_KEY_ID: secretRef("cp-object-storage", "CNVRG_STORAGE_ACCESS_KEY", true),
        AWS_SECRET_ACCESS_KEY: secretRef("cp-object-storage", "CNVRG_STORAGE_SECRET_KEY", true),
        PGHOST: { value: "postgres" },
        PGPORT: { value: "5432" },
        PGDATABASE: secretRef("pg-creds", "POSTGRES_DB"),
        PGUSER: secretRef("pg-creds", "POSTGRES_USER"),
        PGPASSWORD: secretRef("pg-creds", "POSTGRES_PASSWORD"),
      },
    ],
    [
      "scanned redis",
      "capsule-cnvrg-cnvrg-app-redis",
      {
        REDIS_HOST: { value: "redis" },
        REDIS_PORT: { value: "6379" },
        REDISCLI_AUTH: secretRef("redis-creds", "CNVRG_REDIS_PASSWORD"),
      },
    ],
    [
      "scanned elasticsearch",
      "capsule-cnvrg-cnvrg-app-elasticsearch",
      {
        ES_URL: { value: "http://elasticsearch:9200" },
        ES_USER: secretRef("es-creds", "CNVRG_ES_USER"),
        ES_PASSWORD: secretRef("es-creds", "CNVRG_ES_PASS"),
      },
    ],
    [
      "a hand-written plan naming bucket, endpoint and region",
      "capsule-example-ml-platform-postgres",
      {
        CAPSULE_S3_BUCKET: { value: "ml-platform-backups" },
        AWS_ENDPOINT_URL_S3: { value: "https://minio.storage.svc:9000" },
        AWS_REGION: { value: "us-east-1" },
        AWS_ACCESS_KEY_ID: secretRef("backup-s3", "AWS_ACCESS_KEY_ID", true),
        PGDATABASE: { value: "mlflow" },
      },
    ],
    [
      "a target overriding the bucket, with an ES url",
      "capsule-example-ml-platform-search",
      {
        CAPSULE_S3_BUCKET: { value: "ml-platform-search-backups" },
        ES_URL: { value: "https://elasticsearch.ml-platform.svc:9200" },
      },
    ],
  ];
  for (const [given, name, expected] of cases) {
    test(`GIVEN ${given} WHEN compiled THEN the env follows the run contract`, () => {
      const env = envOf(byName(name));
      for (const [variable, value] of Object.entries(expected))
        assert.deepEqual(env[variable], { name: variable, ...value }, variable);
    });
  }

  test("GIVEN a scanned target WHEN compiled THEN CAPSULE_TARGET holds the non-secret target spec", () => {
    const target = JSON.parse(
      envOf(byName("capsule-cnvrg-team-a-team-a-postgresql"))["CAPSULE_TARGET"]!.value!,
    ) as unknown;
    assert.deepEqual(target, {
      version: 1,
      cluster: "cnvrg-team-a.team-a",
      target: "postgresql",
      engine: "postgresql",
      namespace: "cnvrg-team-a",
      connection: { host: "postgres", port: 5433 },
      retention: { keepLast: 5, failedGraceHours: 72 },
      storage: { prefix: "capsule" },
    });
  });

  test("GIVEN every CronJob WHEN inspected THEN each env var is a plain non-secret value or a secretKeyRef, nothing else", () => {
    const plainAllowed =
      /^(CAPSULE_TARGET|CAPSULE_S3_BUCKET|AWS_ENDPOINT_URL_S3|AWS_REGION|PGHOST|PGPORT|PGDATABASE|REDIS_HOST|REDIS_PORT|ES_URL)$/;
    for (const m of compileManifests(ALL_PLANS)) {
      for (const e of containerOf(m).env ?? []) {
        if (e.value !== undefined) assert.match(e.name, plainAllowed);
        else assert.ok(e.valueFrom?.secretKeyRef && Object.keys(e.valueFrom).length === 1, e.name);
      }
    }
  });
});

describe("byte stability and secrets", () => {
  test("GIVEN the same input WHEN compiled twice THEN the bytes are identical", () => {
    const again = scan(APPS.map((a) => structuredClone(a))).plans;
    assert.equal(compile([...again, ...example]), compile(ALL_PLANS));
  });

  test("GIVEN plans and targets in another order WHEN compiled THEN the bytes are identical", () => {
    const shuffled = [...ALL_PLANS]
      .reverse()
      .map((p) => ({ ...p, spec: { ...p.spec, targets: [...p.spec.targets].reverse() } }));
    assert.equal(compile(shuffled), compile(ALL_PLANS));
  });

  test("GIVEN CDK8S_DISABLE_SORT is set WHEN compiled THEN the bytes do not change", () => {
    const before = compile(ALL_PLANS);
    process.env["CDK8S_DISABLE_SORT"] = "1";
    try {
      assert.equal(compile(ALL_PLANS), before);
    } finally {
      delete process.env["CDK8S_DISABLE_SORT"];
    }
  });

  test("GIVEN the Secrets in fixtures/cnvrgapps/secrets.yaml WHEN the fixtures are compiled THEN none of their values appears", () => {
    const output = compile(scanned) + JSON.stringify(scanned);
    // These two values are also public names in the CnvrgApps (the namespace "cnvrg" and the service "postgres"),
    // so they legitimately appear; every other Secret value must not.
    const publicNames = new Set(["cnvrg", "postgres"]);
    const secrets = yaml.loadAll(read("secrets.yaml")) as Array<{ stringData: Record<string, string> }>;
    const values = secrets.flatMap((s) => Object.values(s.stringData)).filter((v) => !publicNames.has(v));
    assert.equal(values.length, 12);
    for (const value of values)
      assert.ok(!output.includes(value), `secret value ${JSON.stringify(value)} leaked`);
  });

  test("GIVEN two targets whose names collide in one namespace WHEN compiled THEN a clear error names both", () => {
    const plan = example[0]!;
    const other = { ...plan, metadata: { cluster: "example-ml.platform" } };
    assert.throws(
      () => compile([plan, other]),
      (e: CapsuleError) =>
        /CronJob ml-platform\/capsule-example-ml-platform-\w+ would be compiled for both cluster example-ml.platform target \w+ and cluster example.ml-platform/.test(
          e.message,
        ),
    );
  });

  test("GIVEN no targets WHEN compiled THEN the output is empty", () => {
    assert.equal(compile([]), "");
    assert.equal(compile(scanned.filter((p) => p.spec.targets.length === 0)), "");
  });
});
