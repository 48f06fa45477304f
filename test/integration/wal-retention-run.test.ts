/**
 * `capsule run` prunes a PostgreSQL target's WAL with its backups (issue 19): the compiled CronJob's pod backs up the
 * harness' real PostgreSQL into radosgw, then applies the plan's retention — to the logical dumps and the physical
 * base backups apart, and to the streamed WAL no kept base backup needs.
 */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { compileManifests } from "../../src/compiler/compile.js";
import { gatherPlans } from "../../src/runtime/gather-plans.js";
import { openBackupStore } from "../../src/runtime/bucket.js";
import { resolveContainerEnv, type EnvVar } from "../fakes/pod-env.js";
import { createBucket, testServers, uniqueName, type TestServers } from "../harness/index.js";
import { capsule } from "../support/cli.js";
import { lsnIn, physicalBackup, putSegments, writeHead } from "../support/physical.js";
import { planS3Secret, writeHarnessPlan } from "../support/plan.js";
import { sql } from "../support/pg.js";

describe("capsule run prunes WAL", () => {
  let servers: TestServers;
  let bucket: string;
  let job: { args: string[]; env: Record<string, string> };
  const cluster = "walrun.test";

  before(async () => {
    servers = await testServers();
    bucket = uniqueName("walrun");
    await createBucket(servers.s3, bucket);
    const db = uniqueName("walrundb").replace(/-/g, "_");
    await sql(servers, "postgres", `CREATE DATABASE ${db}`);
    await sql(servers, db, "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100);");
    const dir = await writeHarnessPlan(servers, {
      cluster,
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
    const secrets: Record<string, Record<string, string>> = {
      "backup-s3": planS3Secret(servers),
      "pg-creds": { POSTGRES_USER: servers.pg.user, POSTGRES_PASSWORD: servers.pg.password },
    };
    const { plans } = await gatherPlans({ plans: dir });
    const cronJob = compileManifests(plans).find(
      (c) => c.metadata.labels["capsule.cnvrg.io/job"] === undefined,
    )!;
    const container = cronJob.spec.jobTemplate.spec!.template.spec!.containers[0]!;
    job = {
      args: container.args as string[],
      env: resolveContainerEnv(container.env as EnvVar[], (name) => secrets[name]),
    };
  });

  test("GIVEN three physical base backups and their WAL beside the dumps WHEN the backup CronJob's pod runs THEN the oldest base backup and the WAL only it needed are pruned, the dump is kept", async () => {
    const store = openBackupStore(
      { bucket: `s3://${bucket}/capsule` },
      { ...job.env, AWS_ENDPOINT_URL_S3: servers.s3.endpoint },
    );
    const archive = store.walArchive(cluster, "pg");
    await putSegments(archive, 1, 1, 10);
    await writeHead(archive, 1, lsnIn(10, 100));
    const oldest = await physicalBackup(store, { cluster, target: "pg", startSegno: 3 });
    await physicalBackup(store, { cluster, target: "pg", startSegno: 6 });
    await physicalBackup(store, { cluster, target: "pg", startSegno: 8 });

    const result = await capsule(job.args, job.env);
    assert.equal(result.code, 0, result.stderr);
    const dump = result.stdout.trim();
    assert.match(result.stderr, /"msg":"retention applied".*"wal":\{"deletedSegments":5,/);

    const left = await store.list({ cluster, engine: "postgresql", target: "pg" });
    assert.ok(
      left.some((e) => e.ref.backupId === dump),
      "the new dump counts in its own kind's slots",
    );
    assert.ok(!left.some((e) => e.ref.backupId === oldest.backupId));
    assert.equal(left.filter((e) => e.statefile?.kind === "physical").length, 2);
    assert.deepEqual(
      (await archive.listing()).segments.map((s) => s.segno),
      [6, 7, 8, 9, 10],
    );
  });
});
