/**
 * CnvrgApps on Azure and on Google Cloud, end to end (issue 18): the fixtures' CnvrgApp and Secrets, as the cnvrg
 * operator writes them, with the storage Secrets pointed at Azurite and at the FAKE GCS; scanned, compiled, and the
 * PostgreSQL backup CronJob's container run as the kubelet runs it (its args through capsule, its env built from the
 * Secrets, the GCS key Secret's `key.json` mounted as a file). What the pod wrote is then read back through the
 * bucket URL alone. Two things differ from a cluster, both outside capsule: the database is the harness' (the
 * compiled target names a Service no DNS here resolves, so only CAPSULE_TARGET's host and port are swapped), and
 * STORAGE_EMULATOR_HOST is set, as a pod on GKE would not.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { before, describe, test } from "node:test";
import yaml from "js-yaml";
import { compileManifests } from "../../src/compiler/compile.js";
import type { CronJobManifest } from "../../src/compiler/cronjob.js";
import { RUN_ENV } from "../../src/plan/run-contract.js";
import { parseCnvrgApps } from "../../src/scanner/read-manifests.js";
import { scan } from "../../src/scanner/scan.js";
import { resolveContainerEnv, type EnvVar } from "../fakes/pod-env.js";
import { createContainer, testServers, uniqueName, type TestServers } from "../harness/index.js";
import { gcsBucket, gcsEnv } from "../harness/gcs.js";
import { capsule } from "../support/cli.js";
import { pgEnv, sql } from "../support/pg.js";

interface Fixture {
  apps: string;
  secrets: Map<string, Record<string, string>>;
}

/** The fixture file with `replace` applied to its text, split into the CnvrgApps' text and the Secrets. */
function fixture(name: string, replace: Record<string, string>): Fixture {
  let text = readFileSync(`fixtures/cnvrgapps-storage/${name}`, "utf8");
  for (const [from, to] of Object.entries(replace)) text = text.replaceAll(from, to);
  const docs = yaml.loadAll(text) as Array<{
    kind: string;
    metadata: { name: string };
    stringData: Record<string, string>;
  }>;
  return {
    apps: text,
    secrets: new Map(docs.filter((d) => d.kind === "Secret").map((d) => [d.metadata.name, d.stringData])),
  };
}

/** The backup CronJob of the app's PostgreSQL target. */
function pgBackupCronJob(f: Fixture, file: string): CronJobManifest {
  const manifests = compileManifests(scan(parseCnvrgApps(f.apps, file)).plans);
  const found = manifests.find(
    (m) =>
      m.metadata.labels?.["capsule.cnvrg.io/engine"] === "postgresql" &&
      m.metadata.labels?.["capsule.cnvrg.io/job"] === undefined,
  );
  assert.ok(found, `a pg backup CronJob among ${manifests.map((m) => m.metadata.name).join(", ")}`);
  return found;
}

/**
 * Runs the CronJob's container as the kubelet would: env from its Secrets, each Secret volume written where it is
 * mounted (under a temporary root, the variables that name the mount path following it), then capsule's entrypoint
 * with the container's args. Resolves with the exit code and output.
 */
async function runPod(
  cronJob: CronJobManifest,
  f: Fixture,
  extraEnv: Record<string, string>,
  servers: TestServers,
  database: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const pod = cronJob.spec.jobTemplate.spec!.template.spec!;
  const container = pod.containers[0]!;
  const env = resolveContainerEnv(container.env as EnvVar[], (name) => f.secrets.get(name));
  const root = await mkdtemp(path.join(tmpdir(), "capsule-pod-"));
  for (const mount of container.volumeMounts ?? []) {
    const secretName = pod.volumes?.find((v) => v.name === mount.name)?.secret?.secretName;
    if (!secretName) continue;
    const dir = path.join(root, mount.mountPath);
    await mkdir(dir, { recursive: true });
    for (const [key, value] of Object.entries(f.secrets.get(secretName) ?? {}))
      await writeFile(path.join(dir, key), value, { mode: 0o400 });
    for (const [name, value] of Object.entries(env))
      if (value.startsWith(`${mount.mountPath}/`)) env[name] = path.join(root, value);
  }
  const target = JSON.parse(env[RUN_ENV.target]!) as { connection: Record<string, unknown> };
  target.connection = { ...target.connection, host: servers.pg.host, port: servers.pg.port, database };
  env[RUN_ENV.target] = JSON.stringify(target);
  // capsule's entrypoint in this process, as the fake kubelet runs a container (test/fakes/kubelet.ts).
  return capsule(container.args ?? [], { ...env, ...pgEnv(servers, database), ...extraEnv });
}

/** What the pod wrote, read through the bucket URL alone: one succeeded backup of `cluster`, and its drill passes. */
async function assertOneVerifiableBackup(
  url: string,
  cluster: string,
  operator: Record<string, string>,
): Promise<void> {
  const list = await capsule(["pg", "--list", "--cluster", cluster, "--bucket", url, "-o", "json"], operator);
  assert.equal(list.code, 0, list.stderr);
  const backups = JSON.parse(list.stdout) as Array<{ backupId: string; state: string }>;
  assert.equal(backups.length, 1, list.stdout);
  assert.equal(backups[0]!.state, "succeeded");
  const verify = await capsule(
    [
      "pg",
      "--verify",
      "--verify-server",
      "--id",
      backups[0]!.backupId,
      "--cluster",
      cluster,
      "--bucket",
      url,
    ],
    operator,
  );
  assert.equal(verify.code, 0, verify.stderr);
}

describe("compiled CronJobs of CnvrgApps on Azure and GCS, run against Azurite and the FAKE GCS", () => {
  let servers: TestServers;
  let database: string;

  before(async () => {
    servers = await testServers();
    database = uniqueName("cloudjobs").replace(/-/g, "_");
    await sql(servers, "postgres", `CREATE DATABASE ${database}`);
    await sql(servers, database, "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 300);");
  });

  test("GIVEN a CnvrgApp whose Secret says azure WHEN its compiled pg CronJob runs THEN the backup lands in the container and lists and verifies from azure:// alone", async () => {
    const containerName = uniqueName("cnvrg-azure");
    await createContainer(servers.azure, containerName);
    const f = fixture("azure.yaml", {
      "cnvrg-storage": containerName,
      cnvrgbackups: servers.azure.account,
      "azure-account-key-example==": servers.azure.key,
      "http://minio.apps.example.com": servers.azure.blobEndpoint,
    });
    const cronJob = pgBackupCronJob(f, "azure.yaml");
    const run = await runPod(cronJob, f, {}, servers, database);
    assert.equal(run.code, 0, run.stderr);

    // An operator with the account key and nothing of the cluster.
    const operator = {
      AZURE_STORAGE_CONNECTION_STRING: servers.azure.connectionString,
      ...pgEnv(servers, database),
    };
    await assertOneVerifiableBackup(`azure://${containerName}/capsule`, "cnvrg-azure.azure-app", operator);
  });

  test("GIVEN a CnvrgApp whose Secret says gcp WHEN its compiled pg CronJob runs with the key Secret mounted THEN the backup lands in the bucket and lists and verifies from gs:// alone", async () => {
    const { fake, bucket } = await gcsBucket("cnvrg-gcs");
    const f = fixture("gcp.yaml", { "cnvrg-gcs-storage": bucket });
    const cronJob = pgBackupCronJob(f, "gcp.yaml");
    const run = await runPod(cronJob, f, gcsEnv(fake), servers, database);
    assert.equal(run.code, 0, run.stderr);

    const operator = { ...gcsEnv(fake), ...pgEnv(servers, database) };
    await assertOneVerifiableBackup(`gs://${bucket}/capsule`, "cnvrg-gcp.gcp-app", operator);
  });
});
