/**
 * `pg --restore --physical --in-cluster` against the wire-level fake API server: a new PVC of the asked size, a
 * never-retried Job from the target's CronJob that mounts it at /restore and runs `capsule run --restore …
 * --physical --to-data-dir /restore/pgdata` with the engine's restore flags forwarded, the same secret references
 * as the CronJob, and on success the lines that say how to point the database at the PVC. An existing PVC is never
 * reused. The Job's pod is played here by a scripted kubelet: `capsule run --physical` is the restore engineer's
 * (issue 19), and what this side must prove is what it asks the cluster for and what it makes of the answer.
 */
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";
import { compileManifests } from "../../src/compiler/compile.js";
import { resolvePlan } from "../../src/plan/resolve.js";
import { PLAN_API_VERSION, PLAN_KIND } from "../../src/plan/types.js";
import { restorePhysicalInCluster, RESTORE_DATA_DIR } from "../../src/runtime/in-cluster.js";
import { FakeKubeApiServer } from "../fakes/kube-apiserver.js";
import { eventually } from "../fakes/kube-clients.js";
import { capsule } from "../support/cli.js";

const NAMESPACE = "cnvrg";
const CLUSTER = "cnvrg.app";

interface Container {
  args: string[];
  env: Array<{ name: string; value?: string; valueFrom?: unknown }>;
  volumeMounts: Array<{ name: string; mountPath: string }>;
}
interface JobObject {
  metadata: { name: string; labels: Record<string, string> };
  spec: {
    backoffLimit: number;
    template: {
      spec: {
        containers: Container[];
        volumes: Array<{ name: string; persistentVolumeClaim?: { claimName: string } }>;
      };
    };
  };
}

function pitrCronJobs() {
  const resolved = resolvePlan(
    {
      apiVersion: PLAN_API_VERSION,
      kind: PLAN_KIND,
      metadata: { cluster: CLUSTER },
      spec: {
        storage: {
          bucket: "backups",
          endpoint: "http://s3.example:9000",
          credentialsSecretRef: { secretName: "bucket-creds" },
        },
        targets: [
          {
            name: "pg",
            engine: "postgresql",
            namespace: NAMESPACE,
            connection: { host: "postgres", database: "cnvrg" },
            pitr: true,
          },
        ],
      },
    },
    "test",
  );
  assert.ok(resolved.ok);
  return compileManifests([resolved.value]);
}

describe("pg --restore --physical --in-cluster (fake API server)", () => {
  let api: FakeKubeApiServer;
  let env: NodeJS.ProcessEnv;
  const notes: string[] = [];

  beforeEach(async () => {
    api = await new FakeKubeApiServer().start();
    env = { KUBECONFIG: await api.kubeconfigFile(), USER: "alice" };
    for (const cronJob of pitrCronJobs())
      api.put("cronjobs", JSON.parse(JSON.stringify(cronJob)) as Record<string, unknown>);
    notes.length = 0;
  });
  afterEach(async () => {
    await api.close();
  });

  /** The kubelet's part: once the Job exists, its pod runs, logs `lines` and exits with `exitCode`. */
  async function podOfNextJob(exitCode: number, lines: string[]): Promise<void> {
    await eventually(() => api.list("jobs").length === 1, 10_000);
    const job = api.list("jobs")[0] as unknown as JobObject & { metadata: { namespace: string } };
    const name = job.metadata.name;
    const pod = (status: Record<string, unknown>) =>
      api.put("pods", {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: `${name}-x1`, namespace: NAMESPACE, labels: { "job-name": name } },
        spec: { containers: job.spec.template.spec.containers, restartPolicy: "Never" },
        status,
      });
    pod({ phase: "Running", containerStatuses: [{ name: "capsule", state: { running: {} } }] });
    api.startLog(NAMESPACE, `${name}-x1`);
    for (const line of lines) api.appendLog(NAMESPACE, `${name}-x1`, line);
    pod({
      phase: exitCode === 0 ? "Succeeded" : "Failed",
      containerStatuses: [{ name: "capsule", state: { terminated: { exitCode } } }],
    });
    api.endLog(NAMESPACE, `${name}-x1`);
    api.finishJob(NAMESPACE, name, exitCode === 0 ? "Complete" : "Failed");
  }

  const run = (extra: Partial<Parameters<typeof restorePhysicalInCluster>[0]> = {}) =>
    restorePhysicalInCluster({
      engine: "postgresql",
      cluster: CLUSTER,
      target: "pg",
      forwarded: ["--target-time", "2026-12-05T12:00:00Z"],
      env,
      logLine: () => undefined,
      note: (line) => notes.push(line),
      pollMs: 20,
      ...extra,
    });

  test("GIVEN a pitr target WHEN restored in the cluster THEN a new PVC of --pvc-size and a Job that mounts it run capsule run --restore --physical with the flags forwarded", async () => {
    const [result] = await Promise.all([
      run({ pvcSize: "30Gi", storageClass: "fast-ssd", id: "postgresql-20261205T000000Z-abc123" }),
      podOfNextJob(0, ["restored to 2026-12-05T12:00:00Z"]),
    ]);
    assert.equal(result.exitCode, 0);

    const [claim] = api.list("persistentvolumeclaims", NAMESPACE) as Array<{
      metadata: { name: string; labels: Record<string, string> };
      spec: Record<string, unknown>;
    }>;
    assert.ok(claim);
    assert.equal(result.pvc, `${NAMESPACE}/${claim.metadata.name}`);
    assert.deepEqual(claim.spec, {
      accessModes: ["ReadWriteOnce"],
      resources: { requests: { storage: "30Gi" } },
      storageClassName: "fast-ssd",
    });
    assert.equal(
      claim.metadata.labels["app.kubernetes.io/managed-by"],
      undefined,
      "never pruned by the reconciler",
    );

    const job = api.list("jobs")[0] as unknown as JobObject;
    const container = job.spec.template.spec.containers[0]!;
    assert.deepEqual(container.args, [
      "run",
      "--cluster",
      CLUSTER,
      "--target",
      "pg",
      "--restore",
      "postgresql-20261205T000000Z-abc123",
      "--physical",
      "--to-data-dir",
      RESTORE_DATA_DIR,
      "--target-time",
      "2026-12-05T12:00:00Z",
    ]);
    assert.equal(job.spec.backoffLimit, 0, "a restore is never retried");
    assert.deepEqual(
      job.spec.template.spec.volumes.find((v) => v.name === "restore")?.persistentVolumeClaim,
      { claimName: claim.metadata.name },
    );
    assert.ok(container.volumeMounts.some((m) => m.name === "restore" && m.mountPath === "/restore"));

    // Exactly the CronJob's env and secret references, plus the run's request variables; no secret value.
    const cronJob = api.get("cronjobs", NAMESPACE, "capsule-cnvrg-app-pg") as unknown as {
      spec: { jobTemplate: { spec: { template: { spec: { containers: Container[] } } } } };
    };
    const cronEnv = cronJob.spec.jobTemplate.spec.template.spec.containers[0]!.env;
    assert.deepEqual(container.env.slice(0, cronEnv.length), cronEnv);
    assert.deepEqual(
      container.env.slice(cronEnv.length).map((e) => e.name),
      ["CAPSULE_TRIGGER", "CAPSULE_REQUEST_ID", "CAPSULE_REQUESTED_BY"],
    );

    const said = notes.join("\n");
    assert.match(
      said,
      new RegExp(`created PVC ${NAMESPACE}/${claim.metadata.name} \\(30Gi, class fast-ssd\\)`),
    );
    assert.match(said, new RegExp(`claimName .* with ${claim.metadata.name}`));
    assert.match(said, /pg_ctl start -D <mount>\/pgdata/);
    assert.match(said, /files belong to uid 65532/);
  });

  test("GIVEN no --id and no --pvc-size WHEN restored THEN the newest base backup is asked for and the PVC gets the default size", async () => {
    await Promise.all([run({ forwarded: [] }), podOfNextJob(0, [])]);
    const job = api.list("jobs")[0] as unknown as JobObject;
    assert.deepEqual(job.spec.template.spec.containers[0]!.args.slice(5), [
      "--restore",
      "latest",
      "--physical",
      "--to-data-dir",
      RESTORE_DATA_DIR,
    ]);
    const [claim] = api.list("persistentvolumeclaims") as Array<{ spec: { resources: unknown } }>;
    assert.deepEqual(claim?.spec.resources, { requests: { storage: "80Gi" } });
  });

  test("GIVEN an existing PVC named by --pvc-name WHEN restored THEN one line refuses it and nothing is created", async () => {
    api.put("persistentvolumeclaims", {
      metadata: { namespace: NAMESPACE, name: "pg-storage" },
      spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "10Gi" } } },
    });
    await assert.rejects(
      run({ pvcName: "pg-storage" }),
      (error: Error) =>
        !error.message.includes("\n") &&
        /PersistentVolumeClaim cnvrg\/pg-storage exists: a physical restore writes only into a new PVC/.test(
          error.message,
        ),
    );
    assert.equal(api.writeCount(), 0);
    assert.equal(api.list("jobs").length, 0);
  });

  test("GIVEN a bad --pvc-size or --storage-class WHEN restored THEN one line names the flag before anything is asked of the cluster", async () => {
    await assert.rejects(run({ pvcSize: "lots" }), (e: Error) =>
      /^--pvc-size must be a Kubernetes quantity such as 100Gi \(got "lots"\)$/.test(e.message),
    );
    await assert.rejects(run({ storageClass: "Fast SSD" }), /--storage-class must be a StorageClass name/);
    assert.equal(api.writeCount(), 0);
  });

  test("GIVEN the restore Job fails WHEN followed THEN its exit code is capsule's, the PVC is left for inspection and nothing is said about starting the database", async () => {
    const [result] = await Promise.all([
      run(),
      podOfNextJob(3, ["restore failed: no base backup before the target"]),
    ]);
    assert.equal(result.exitCode, 3);
    const said = notes.join("\n");
    assert.match(said, /the database was not touched; PVC cnvrg\/\S+ is left for inspection/);
    assert.doesNotMatch(said, /pg_ctl start/);
    assert.equal(api.list("persistentvolumeclaims").length, 1);
  });

  test("GIVEN the CLI WHEN the PVC flags are given without --physical or without --in-cluster THEN one line refuses them, exit 2", async () => {
    const inCluster = await capsule(
      ["pg", "--restore", "--in-cluster", "--id", "x", "--pvc-size", "10Gi", "--yes"],
      env,
    );
    assert.equal(inCluster.code, 2, inCluster.stderr);
    assert.match(inCluster.stderr, /--pvc-size applies to --restore only with --physical --in-cluster/);
    const local = await capsule(["pg", "--restore", "--id", "x", "--storage-class", "fast"], env);
    assert.equal(local.code, 2, local.stderr);
    assert.match(local.stderr, /--storage-class applies to --restore only with --in-cluster/);
    assert.equal(api.writeCount(), 0);
  });
});
