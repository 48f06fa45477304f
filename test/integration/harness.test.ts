// Smoke test of the test harness: each server it starts answers, and answers the way the other tests rely on.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { join } from "node:path";
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { BlobServiceClient, StorageSharedKeyCredential } from "@azure/storage-blob";
import {
  createBucket,
  createContainer,
  requireBinary,
  run,
  s3Client,
  testServers,
  uniqueName,
  type TestServers,
} from "../harness/index.js";

let servers: TestServers;
before(async () => {
  servers = await testServers();
});

void describe("harness: postgres", () => {
  const psql = (password: string, sql: string) => {
    const { pg } = servers;
    return run(
      join(pg.binDir, "psql"),
      ["-X", "-A", "-t", "-h", pg.host, "-p", String(pg.port), "-U", pg.user, "-d", pg.database, "-c", sql],
      { env: { ...process.env, PGPASSWORD: password, PGCONNECT_TIMEOUT: "5" }, timeoutMs: 15_000 },
    );
  };

  void it("GIVEN the right password WHEN psql runs `select 1` over TCP THEN it prints 1", async () => {
    const { stdout } = await psql(servers.pg.password, "select 1");
    assert.equal(stdout.trim(), "1");
  });

  void it("GIVEN a wrong password WHEN psql connects over TCP THEN authentication fails", async () => {
    await assert.rejects(psql("not-the-password", "select 1"), /password authentication failed/);
  });

  void it("GIVEN the server WHEN asked its version THEN it matches the harness's pg.version", async () => {
    const { stdout } = await psql(servers.pg.password, "show server_version");
    assert.ok(stdout.trim().startsWith(servers.pg.version), `${stdout.trim()} vs ${servers.pg.version}`);
  });
});

void describe("harness: redis", () => {
  void it("GIVEN the server WHEN redis-cli sends PING THEN it answers PONG", async () => {
    const cli = requireBinary("redis-cli", "redis-tools");
    const { stdout } = await run(cli, ["-h", servers.redis.host, "-p", String(servers.redis.port), "PING"], {
      timeoutMs: 10_000,
    });
    assert.equal(stdout.trim(), "PONG");
  });
});

void describe("harness: s3", () => {
  let client: S3Client;
  before(() => {
    client = s3Client(servers.s3);
  });
  after(() => client.destroy());

  void it("GIVEN a new bucket WHEN an object is put THEN the same bytes come back", async () => {
    const bucket = uniqueName("harness-smoke");
    await createBucket(servers.s3, bucket);
    await createBucket(servers.s3, bucket); // idempotent
    const body = `hello from the harness ${bucket}`;
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: "a/b.txt", Body: body }));
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "a/b.txt" }));
    assert.equal(await got.Body?.transformToString(), body);
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: "a/b.txt" }));
  });

  void it("GIVEN a prefix with odd characters WHEN uniqueName is called THEN the name is a valid bucket name", () => {
    const name = uniqueName("Capsule_Test/Prefix");
    assert.match(name, /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/);
    assert.notEqual(uniqueName("x"), uniqueName("x"));
  });
});

void describe("harness: azurite", () => {
  void it("GIVEN a new container WHEN a blob is put THEN the same bytes come back, and a wrong key is refused", async () => {
    const container = uniqueName("harness-smoke");
    await createContainer(servers.azure, container);
    await createContainer(servers.azure, container); // idempotent
    const blobs = BlobServiceClient.fromConnectionString(servers.azure.connectionString).getContainerClient(
      container,
    );
    const body = `hello from the harness ${container}`;
    await blobs.getBlockBlobClient("a/b.txt").upload(body, Buffer.byteLength(body));
    assert.equal((await blobs.getBlobClient("a/b.txt").downloadToBuffer()).toString(), body);
    // Azurite checks shared-key signatures as Azure does: what the adapter's access-denied line relies on.
    const wrongKey = Buffer.from("not the account key").toString("base64");
    const stranger = new BlobServiceClient(
      servers.azure.blobEndpoint,
      new StorageSharedKeyCredential(servers.azure.account, wrongKey),
      { retryOptions: { maxTries: 1 } },
    ).getContainerClient(container);
    await assert.rejects(stranger.getBlobClient("a/b.txt").download(), { statusCode: 403 });
  });

  void it("GIVEN a prefix with odd characters WHEN uniqueName is called THEN the name is a valid container name", () => {
    assert.match(uniqueName("Capsule--Test/_Prefix"), /^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$/);
  });
});
