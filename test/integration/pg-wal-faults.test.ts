/**
 * WAL streaming under fault, for real: a `capsule pg --stream-wal` child process is killed -9 mid-stream, its S3
 * endpoint (a second radosgw of the test cluster) is killed and brought back while writes continue, its PostgreSQL
 * server is restarted under it, and it is sent SIGTERM. Each time the bucket is then inspected against the server:
 * segments contiguous and byte-identical to pg_wal, the slot never confirmed past the bucket, nothing lost.
 */
import { mkdtemp, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { parseLsn } from "../../src/domain/wal.js";
import type { PgConnection } from "../../src/engines/postgres/connection.js";
import { openBackupStore } from "../../src/runtime/bucket.js";
import type { WalArchive } from "../../src/storage/wal-archive.js";
import { createBucket, s3Env, testServers, uniqueName, type TestServers } from "../harness/index.js";
import { startPostgres, type PostgresServer } from "../harness/postgres.js";
import { startExtraRadosgw, type ExtraRadosgw } from "../harness/radosgw.js";
import { compileManifests } from "../../src/compiler/compile.js";
import { gatherPlans } from "../../src/runtime/gather-plans.js";
import { resolveContainerEnv, type EnvVar } from "../fakes/pod-env.js";
import { startCapsule, type CapsuleProcess } from "../support/capsule-process.js";
import { planS3Secret, writeHarnessPlan } from "../support/plan.js";
import {
  archivedLsn,
  assertConfirmedWithinBucket,
  assertContiguous,
  assertIdenticalToServer,
  commitRow,
  connOf,
  envOf,
  slotRestartLsn,
  switchWal,
  until,
  writeLoad,
} from "../support/wal.js";

describe("capsule pg --stream-wal under fault", () => {
  let servers: TestServers;
  let server: PostgresServer;
  let conn: PgConnection;
  let bucket: string;
  const cluster = "walfaults";

  before(async () => {
    servers = await testServers();
    server = await startPostgres();
    conn = connOf(server);
    bucket = `s3://${uniqueName("walfaults")}/capsule`;
    await createBucket(servers.s3, new URL(bucket).host);
  });

  after(async () => {
    await server?.stop();
  });

  const env = (endpoint?: string): Record<string, string> => ({
    ...s3Env(servers.s3),
    ...(endpoint ? { AWS_ENDPOINT_URL_S3: endpoint } : {}),
    ...envOf(server),
    CAPSULE_BUCKET: bucket,
  });

  const archiveOf = (target: string): WalArchive =>
    openBackupStore({ bucket }, s3Env(servers.s3)).walArchive(cluster, target);

  function streamer(target: string, endpoint?: string): CapsuleProcess {
    return startCapsule(
      ["pg", "--stream-wal", "--cluster", cluster, "--target", target, "--wal-upload-interval", "1s"],
      // The S3 client's own retry window (60 s) would only make the outage test slower: the streamer retries on.
      { ...env(endpoint), CAPSULE_S3_RETRY_WINDOW_MS: "5000" },
    );
  }

  async function stopped(child: CapsuleProcess, signal: NodeJS.Signals = "SIGTERM") {
    if (child.running()) child.signal(signal);
    return child.exited;
  }

  test("GIVEN a streamer killed -9 mid-stream WHEN writes continue and it is started again THEN no WAL is lost", async () => {
    const archive = archiveOf("kill9");
    let child = streamer("kill9");
    try {
      await child.waitForStderr(/streaming WAL/);
      await writeLoad(conn, 60_000);
      const before = await commitRow(conn, "before kill");
      await until("WAL in the bucket", async () => (await archivedLsn(archive)) >= before);
      // Mid-stream: more WAL is on its way when the process dies.
      const loading = writeLoad(conn, 60_000);
      await until("the next upload", async () => (await archivedLsn(archive)) > before);
      child.signal("SIGKILL");
      assert.equal((await child.exited).signal, "SIGKILL");
      await loading;
      await assertConfirmedWithinBucket(conn, "capsule_kill9", archive);
      await switchWal(conn);
      await writeLoad(conn, 30_000);
      const last = await commitRow(conn, "after kill");
      child = streamer("kill9");
      await until("the WAL written while it was dead", async () => (await archivedLsn(archive)) >= last);
    } finally {
      const exit = await stopped(child);
      assert.equal(exit.code, 0, child.stderr());
    }
    const listing = await archive.listing();
    assertContiguous(listing);
    assert.ok((await assertIdenticalToServer(conn, archive, listing)) >= 1);
    assert.equal(await slotRestartLsn(conn, "capsule_kill9"), await archivedLsn(archive));
  });

  test("GIVEN the S3 endpoint killed while streaming WHEN writes continue and it comes back THEN the slot held the WAL and the bucket has it all", async () => {
    const extra: ExtraRadosgw = await startExtraRadosgw(servers.s3.cephConf);
    const archive = archiveOf("outage");
    const child = streamer("outage", extra.endpoint);
    try {
      await child.waitForStderr(/streaming WAL/);
      const first = await commitRow(conn, "before outage");
      await until("WAL in the bucket", async () => (await archivedLsn(archive)) >= first);
      await extra.kill();
      const heldFrom = await archivedLsn(archive);
      for (let i = 0; i < 2; i++) {
        await writeLoad(conn, 40_000);
        await switchWal(conn);
      }
      const last = await commitRow(conn, "during outage");
      await child.waitForStderr(/could not store a WAL segment|could not write the WAL head/);
      // The slot still holds everything the bucket lacks.
      const restart = await slotRestartLsn(conn, "capsule_outage");
      assert.ok(restart !== undefined && restart <= heldFrom, `slot at ${restart}, bucket at ${heldFrom}`);
      await extra.restart();
      await until(
        "the WAL written during the outage",
        async () => (await archivedLsn(archive)) >= last,
        180_000,
      );
      await child.waitForStderr(/the store is back/);
      assert.equal(
        child.stderr().match(/could not store a WAL segment|could not write the WAL head/g)?.length,
        1,
        "the outage is logged once",
      );
    } finally {
      const exit = await stopped(child);
      await extra.stop();
      assert.equal(exit.code, 0, child.stderr());
    }
    const listing = await archive.listing();
    assertContiguous(listing);
    assert.ok((await assertIdenticalToServer(conn, archive, listing)) >= 2);
  });

  test("GIVEN the server restarted under the streamer THEN it reconnects and resumes without a gap", async () => {
    const archive = archiveOf("restart");
    const child = streamer("restart");
    try {
      await child.waitForStderr(/streaming WAL/);
      const first = await commitRow(conn, "before restart");
      await until("WAL in the bucket", async () => (await archivedLsn(archive)) >= first);
      await server.restart();
      await writeLoad(conn, 30_000);
      const last = await commitRow(conn, "after restart");
      await child.waitForStderr(/the server is back/);
      await until("the WAL written after the restart", async () => (await archivedLsn(archive)) >= last);
      assert.equal(child.stderr().match(/lost the server/g)?.length, 1, "the outage is logged once");
    } finally {
      const exit = await stopped(child);
      assert.equal(exit.code, 0, child.stderr());
    }
    assertContiguous(await archive.listing());
  });

  test("GIVEN SIGTERM WHEN the streamer stops THEN what it received is stored, confirmed, and it exits 0", async () => {
    const archive = archiveOf("sigterm");
    // A long interval: only the shutdown can have stored the last commit in time.
    const child = startCapsule(
      ["pg", "--stream-wal", "--cluster", cluster, "--target", "sigterm", "--wal-upload-interval", "10m"],
      env(),
    );
    await child.waitForStderr(/streaming WAL/);
    const last = await commitRow(conn, "just before SIGTERM");
    await until("the server to send the commit", async () => {
      const rows = await (
        await import("../support/wal.js")
      ).query(
        conn,
        "SELECT sent_lsn::text AS l FROM pg_stat_replication WHERE application_name = 'capsule-wal'",
      );
      return rows.some((r) => parseLsn(String(r["l"])) >= last);
    });
    const exit = await stopped(child, "SIGTERM");
    assert.equal(exit.code, 0, child.stderr());
    assert.match(child.stderr(), /stopped streaming: .* holds WAL up to/);
    assert.ok((await archivedLsn(archive)) >= last);
    assert.equal(await slotRestartLsn(conn, "capsule_sigterm"), await archivedLsn(archive));
  });

  test("GIVEN a compiled CronJob's env WHEN `capsule run --stream-wal --cluster C --target T` runs THEN it streams into the target and exits 0 at SIGTERM", async () => {
    const bucketName = uniqueName("walrun");
    await createBucket(servers.s3, bucketName);
    const dir = await writeHarnessPlan(servers, {
      cluster: "walrun",
      bucket: bucketName,
      targets: `    - name: db
      engine: postgresql
      namespace: apps
      connection: { host: ${server.host}, port: ${server.port}, database: postgres }
      credentials: { secretName: pg-creds }
      schedule: { period: 24h }
      retention: { keepLast: 2 }
`,
    });
    const secrets: Record<string, Record<string, string>> = {
      "backup-s3": planS3Secret(servers),
      "pg-creds": { POSTGRES_USER: server.user, POSTGRES_PASSWORD: server.password },
    };
    const { plans } = await gatherPlans({ plans: dir });
    const container = compileManifests(plans)[0]!.spec.jobTemplate.spec!.template.spec!.containers[0]!;
    const podEnv = resolveContainerEnv(container.env as EnvVar[], (name) => secrets[name]);
    // The Deployment's liveness probe reads the heartbeat's age: the streamer must touch it as it goes.
    const heartbeat = path.join(await mkdtemp(path.join(tmpdir(), "capsule-heartbeat-")), "heartbeat");
    const child = startCapsule(["run", "--stream-wal", "--cluster", "walrun", "--target", "db"], {
      ...podEnv,
      CAPSULE_STREAM_WAL_HEARTBEAT: heartbeat,
    });
    const archive = openBackupStore(
      { bucket: `s3://${bucketName}/capsule` },
      { ...podEnv, AWS_ENDPOINT_URL_S3: servers.s3.endpoint },
    ).walArchive("walrun", "db");
    try {
      await child.waitForStderr(/"msg":"streaming WAL"/);
      await switchWal(conn);
      const switched = await commitRow(conn, "from the Deployment");
      await until("the switched segment in the bucket", async () => (await archivedLsn(archive)) >= switched);
      const first = (await stat(heartbeat)).mtimeMs;
      await until("the heartbeat touched again by the streaming loop", async () => {
        return (await stat(heartbeat)).mtimeMs > first;
      });
    } finally {
      const exit = await stopped(child);
      assert.equal(exit.code, 0, child.stderr());
    }
    assert.match(child.stderr(), /"msg":"stopped streaming: /);
    assert.equal((await archive.readHead())!.slot, "capsule_db");
    assert.ok((await assertIdenticalToServer(conn, archive, await archive.listing())) >= 1);
  });
});
