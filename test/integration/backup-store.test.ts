/**
 * The storage contract, run against both stores: a real S3 server (radosgw, from the harness) and a local
 * directory. No mocks: every byte goes through the real store.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import pLimit from "p-limit";
import { downloadArtifact } from "../../src/runtime/download.js";
import { BackupStore } from "../../src/storage/backup-store.js";
import { layout } from "../../src/storage/layout.js";
import { openBucket } from "../../src/storage/open-store.js";
import { S3ObjectStore } from "../../src/storage/s3-object-store.js";
import { serializeStatefile } from "../../src/storage/statefile.js";
import { createBucket, s3Env, testServers, uniqueName, type TestServers } from "../harness/index.js";
import { capsule } from "../support/cli.js";
import { statefile } from "../support/entries.js";
import { generatedStream, sha256Of } from "../support/streams.js";

const MiB = 1 << 20;

interface StoreUnderTest {
  url: string;
  env: Record<string, string>;
  open(): BackupStore;
}

async function s3Store(servers: TestServers): Promise<StoreUnderTest> {
  const bucket = uniqueName("store");
  await createBucket(servers.s3, bucket);
  const env = s3Env(servers.s3);
  const url = `s3://${bucket}/backups`;
  return { url, env, open: () => storeAt(url, env) };
}

async function fileStore(): Promise<StoreUnderTest> {
  const dir = await mkdtemp(path.join(tmpdir(), "capsule-file-store-"));
  const url = `file://${dir}`;
  return { url, env: {}, open: () => storeAt(url, {}) };
}

function storeAt(url: string, env: Record<string, string>): BackupStore {
  const { store, prefix } = openBucket(url, {}, env);
  return new BackupStore(store, prefix);
}

const begin = (store: BackupStore, target = "db", cluster = "c1") =>
  store.begin({
    cluster,
    target,
    engine: "postgresql",
    trigger: { type: "manual" },
    source: { host: "h" },
    tool: { capsule: "test" },
  });

for (const kind of ["s3", "file"] as const) {
  describe(`backup store on ${kind}`, () => {
    let servers: TestServers;
    let sut: StoreUnderTest;
    before(async () => {
      servers = await testServers();
      sut = kind === "s3" ? await s3Store(servers) : await fileStore();
    });

    test("GIVEN a 64 MiB stream WHEN backed up and read back THEN the sha256 matches and the run is succeeded", async () => {
      const store = sut.open();
      const run = await begin(store);
      assert.equal((await store.get(run.ref)).state, "running");
      const expected = await sha256Of(generatedStream(64 * MiB, 7));
      const uploaded = await run.uploadArtifact("dump.bin", generatedStream(64 * MiB, 7), {
        sizeHint: 64 * MiB,
      });
      assert.deepEqual(uploaded, { sizeBytes: expected.bytes, sha256: expected.sha256 });
      await run.commit({
        artifact: {
          name: "dump.bin",
          format: "test",
          compression: "none",
          encryption: { type: "none" },
          ...uploaded,
        },
        fingerprint: { rows: 1 },
      });
      const entry = await store.get(run.ref);
      assert.equal(entry.state, "succeeded");
      assert.deepEqual(await sha256Of(await store.openArtifact(entry)), expected);
      assert.deepEqual(await store.verifyArtifact(entry), {
        sha256: expected.sha256,
        sizeBytes: expected.bytes,
      });
    });

    test("GIVEN 1,500 backups WHEN listed THEN all come back newest first, paging past 1,000", async () => {
      const store = sut.open();
      const limit = pLimit(32);
      const base = Date.parse("2026-01-01T00:00:00Z");
      const written = await Promise.all(
        Array.from({ length: 1500 }, (_, i) =>
          limit(async () => {
            const s = statefile({
              cluster: "many",
              target: "db",
              at: new Date(base + i * 60_000).toISOString(),
            });
            await store.objects.put(layout.statefileKey(store.prefix, s), serializeStatefile(s));
            return s;
          }),
        ),
      );
      const listed = await store.list({ cluster: "many", engine: "postgresql" });
      assert.equal(listed.length, 1500);
      const newestFirst = written.map((s) => s.backupId).reverse();
      assert.deepEqual(
        listed.map((e) => e.ref.backupId),
        newestFirst,
      );
      assert.ok(listed.every((e) => e.state === "succeeded"));
    });

    test("GIVEN a corrupt statefile among good ones WHEN listed THEN it is reported with its key and the rest are listed", async () => {
      const store = sut.open();
      const good = statefile({ cluster: "corrupt", at: "2026-02-01T00:00:00Z" });
      await store.objects.put(layout.statefileKey(store.prefix, good), serializeStatefile(good));
      const badRef = {
        cluster: "corrupt",
        engine: "postgresql" as const,
        backupId: "postgresql-20260201T010000Z-bad000",
      };
      await store.objects.put(layout.statefileKey(store.prefix, badRef), "{ this is not json");
      const entries = await store.list({ cluster: "corrupt" });
      assert.equal(entries.length, 2);
      const corrupt = entries.find((e) => e.state === "corrupt");
      assert.ok(corrupt);
      assert.equal(corrupt.key, layout.statefileKey(store.prefix, badRef));
      assert.match(corrupt.problem ?? "", /not valid JSON/);
      assert.equal(entries.find((e) => e.state === "succeeded")?.ref.backupId, good.backupId);
    });

    test("GIVEN a run killed mid-upload WHEN listed THEN it is not succeeded, cannot be downloaded, and deleting it leaves nothing", async () => {
      const child = spawn(process.execPath, ["--import", "tsx", "test/support/begin-and-hang.ts", sut.url], {
        env: { ...process.env, ...sut.env },
        stdio: ["ignore", "pipe", "inherit"],
      });
      const backupId = await new Promise<string>((resolve, reject) => {
        child.stdout.on("data", (c: Buffer) => resolve(c.toString().trim()));
        child.on("exit", (code) => reject(new Error(`child exited ${code} before it was killed`)));
      });
      const exited = new Promise((r) => child.on("exit", r));
      child.kill("SIGKILL");
      await exited;

      const ref = { cluster: "killed", engine: "postgresql" as const, backupId };
      const stale = new BackupStore(sut.open().objects, sut.open().prefix, {
        abandonedAfterMs: 0,
        now: () => new Date(Date.now() + 1000),
      });
      const entry = await stale.get(ref);
      assert.equal(entry.state, "abandoned");
      assert.equal(entry.statefile?.status, "running");
      await assert.rejects(
        downloadArtifact(stale, entry, path.join(tmpdir(), "never")),
        /abandoned, not succeeded/,
      );
      if (stale.objects instanceof S3ObjectStore) {
        // The killed process's last requests may still be landing; wait until its multipart upload is visible,
        // which also proves the kill left one behind for delete to clean up.
        const s3 = stale.objects;
        await waitFor(
          async () => (await s3.listIncompleteUploads(layout.backupPrefix(stale.prefix, ref))).length === 1,
        );
      }
      await stale.delete(ref);
      const left = [];
      for await (const o of stale.objects.list(layout.backupPrefix(stale.prefix, ref))) left.push(o.key);
      assert.deepEqual(left, []);
      if (stale.objects instanceof S3ObjectStore) {
        assert.deepEqual(
          await stale.objects.listIncompleteUploads(layout.backupPrefix(stale.prefix, ref)),
          [],
        );
      }
    });

    test("GIVEN a source that fails after 40 MiB WHEN uploaded THEN the upload fails and leaves no partial object or multipart upload", async () => {
      const store = sut.open();
      const run = await begin(store, "failing");
      await assert.rejects(
        run.uploadArtifact("dump.bin", generatedStream(100 * MiB, 3, { failAfter: 40 * MiB })),
        /source failed/,
      );
      await run.fail("uploading", new Error("source failed"));
      const prefix = layout.backupPrefix(store.prefix, run.ref);
      const keys = [];
      for await (const o of store.objects.list(prefix)) keys.push(o.key);
      assert.deepEqual(keys, [layout.statefileKey(store.prefix, run.ref)]);
      if (store.objects instanceof S3ObjectStore)
        assert.deepEqual(await store.objects.listIncompleteUploads(prefix), []);
      else
        assert.deepEqual((await readdir(path.join(new URL(sut.url).pathname, prefix))).sort(), [
          "statefile.json",
        ]);
      const entry = await store.get(run.ref);
      assert.equal(entry.state, "failed");
      assert.equal(entry.statefile?.error?.phase, "uploading");
    });

    test("GIVEN a succeeded backup WHEN two writers append restore records at once THEN both records land", async () => {
      const store = sut.open();
      const run = await begin(store, "concurrent");
      const up = await run.uploadArtifact("a.bin", generatedStream(1000, 1));
      await run.commit({
        artifact: { name: "a.bin", format: "t", compression: "none", encryption: { type: "none" }, ...up },
      });
      await Promise.all(
        ["x", "y", "z"].map((to) =>
          store.update(run.ref, (s) =>
            s.restores.push({ at: new Date().toISOString(), to, result: "succeeded" }),
          ),
        ),
      );
      const restores = (await store.get(run.ref)).statefile?.restores.map((r) => r.to).sort();
      assert.deepEqual(restores, ["x", "y", "z"]);
    });

    test("GIVEN a listing cached by one reader WHEN another writer changes a statefile THEN the next listing shows the change", async () => {
      const reader = sut.open();
      const writer = sut.open();
      const run = await begin(writer, "cached", "cache");
      const up = await run.uploadArtifact("a.bin", generatedStream(1000, 1));
      await run.commit({
        artifact: { name: "a.bin", format: "t", compression: "none", encryption: { type: "none" }, ...up },
      });
      const first = await reader.list({ cluster: "cache" });
      assert.equal(first[0]?.statefile?.verification.status, "unverified");
      // A caller editing what it got must not change what the store remembers.
      first[0].statefile.verification.status = "failed";
      assert.equal(
        (await reader.list({ cluster: "cache" }))[0]?.statefile?.verification.status,
        "unverified",
      );
      await writer.update(
        run.ref,
        (s) => (s.verification = { status: "verified", at: new Date().toISOString() }),
      );
      assert.equal((await reader.list({ cluster: "cache" }))[0]?.statefile?.verification.status, "verified");
      // Two listings at once share their reads, yet each gets its own copy.
      const fresh = sut.open();
      const [a, b] = await Promise.all([fresh.list({ cluster: "cache" }), fresh.list({ cluster: "cache" })]);
      assert.deepEqual(a, b);
      assert.notEqual(a[0]?.statefile, b[0]?.statefile);
      await writer.delete(run.ref);
      assert.deepEqual(await reader.list({ cluster: "cache" }), []);
    });

    test("GIVEN a flipped byte in the artifact WHEN read back THEN the checksum mismatch is caught and nothing is downloaded", async () => {
      const store = sut.open();
      const run = await begin(store, "tampered");
      const up = await run.uploadArtifact("a.bin", generatedStream(3 * MiB, 5));
      await run.commit({
        artifact: { name: "a.bin", format: "t", compression: "none", encryption: { type: "none" }, ...up },
      });
      const key = layout.artifactKey(store.prefix, run.ref, "a.bin");
      const bytes = Buffer.concat(await (await store.objects.get(key)).toArray());
      bytes[1234] = bytes[1234]! ^ 0xff;
      await store.objects.put(key, bytes);
      const entry = await store.get(run.ref);
      await assert.rejects(store.verifyArtifact(entry), /checksum mismatch/);
      const target = path.join(tmpdir(), uniqueName("dl"));
      await assert.rejects(downloadArtifact(store, entry, target), /checksum mismatch/);
      await assert.rejects(readdir(target), /ENOENT/);
    });

    test("GIVEN a backup WHEN deleted through the CLI THEN artifact and statefile are gone; a half-done delete is finished by another", async () => {
      const store = sut.open();
      const run = await begin(store, "deleted", "del");
      const up = await run.uploadArtifact("a.bin", generatedStream(1000, 1));
      await run.commit({
        artifact: { name: "a.bin", format: "t", compression: "none", encryption: { type: "none" }, ...up },
      });
      const refused = await capsule(
        ["pg", "--delete", "--id", run.ref.backupId, "--cluster", "del", "--bucket", sut.url],
        sut.env,
      );
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /refused: no terminal to confirm on; pass --yes/);
      const ok = await capsule(
        ["pg", "--delete", "--yes", "--id", run.ref.backupId, "--cluster", "del", "--bucket", sut.url],
        sut.env,
      );
      assert.equal(ok.code, 0, ok.stderr);
      const left = [];
      for await (const o of store.objects.list(layout.backupPrefix(store.prefix, run.ref))) left.push(o.key);
      assert.deepEqual(left, []);

      // A delete that crashed after marking: listed as deleting (never good), and the next delete completes it.
      const run2 = await begin(store, "deleted", "del");
      await run2.commit({
        artifact: { name: "a.bin", format: "t", compression: "none", encryption: { type: "none" }, ...up },
      });
      await store.update(run2.ref, (s) => (s.status = "deleting"));
      assert.equal((await store.get(run2.ref)).state, "deleting");
      await store.delete(run2.ref);
      await assert.rejects(store.get(run2.ref), /no backup/);
    });

    test("GIVEN backups WHEN listed through the CLI THEN table, json and yaml show them; an unknown id is one clear line", async () => {
      const store = sut.open();
      const run = await begin(store, "cli", "cli");
      const up = await run.uploadArtifact("a.bin", generatedStream(2048, 1));
      await run.commit({
        artifact: { name: "a.bin", format: "t", compression: "none", encryption: { type: "none" }, ...up },
      });
      const table = await capsule(["pg", "--list", "--cluster", "cli", "--bucket", sut.url], sut.env);
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, new RegExp(`${run.ref.backupId}\\s+cli\\s+succeeded`));
      const json = await capsule(
        ["pg", "--list", "--cluster", "cli", "--bucket", sut.url, "-o", "json"],
        sut.env,
      );
      assert.equal((JSON.parse(json.stdout) as Array<{ backupId: string }>)[0]?.backupId, run.ref.backupId);
      const described = await capsule(
        ["pg", "--describe", "--id", run.ref.backupId, "--cluster", "cli", "--bucket", sut.url],
        sut.env,
      );
      assert.match(described.stdout, /sha256: [0-9a-f]{64}/);
      const unknown = await capsule(
        [
          "pg",
          "--describe",
          "--id",
          "postgresql-20200101T000000Z-000000",
          "--cluster",
          "cli",
          "--bucket",
          sut.url,
        ],
        sut.env,
      );
      assert.equal(unknown.code, 1);
      assert.equal(unknown.stderr.trim().split("\n").length, 1);
      assert.match(unknown.stderr, /no backup postgresql-20200101T000000Z-000000 for cluster cli/);
    });

    after(async () => {
      if (kind === "file") await rm(new URL(sut.url).pathname, { recursive: true, force: true });
    });
  });
}

describe("store failures are one clear line", () => {
  let servers: TestServers;
  before(async () => {
    servers = await testServers();
  });

  test("GIVEN wrong S3 credentials WHEN listing THEN access denied in one line", async () => {
    const bucket = uniqueName("creds");
    await createBucket(servers.s3, bucket);
    const env = { ...s3Env(servers.s3), AWS_SECRET_ACCESS_KEY: "definitely-wrong-secret" };
    const result = await capsule(["pg", "--list", "--bucket", `s3://${bucket}`], env);
    assert.equal(result.code, 1);
    assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
    assert.match(result.stderr, /access denied/);
    assert.doesNotMatch(result.stderr, /definitely-wrong-secret/);
  });

  test("GIVEN an endpoint nobody listens on WHEN listing THEN unreachable in one line", async () => {
    const env = { ...s3Env(servers.s3), AWS_ENDPOINT_URL_S3: "http://127.0.0.1:9" };
    const result = await capsule(["pg", "--list", "--bucket", "s3://nobody-home"], env);
    assert.equal(result.code, 1);
    assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
    assert.match(result.stderr, /endpoint unreachable \(ECONNREFUSED\)/);
  });

  test("GIVEN a bucket that does not exist WHEN listing THEN it says so", async () => {
    const result = await capsule(
      ["pg", "--list", "--bucket", `s3://${uniqueName("missing")}`],
      s3Env(servers.s3),
    );
    assert.equal(result.code, 1);
    assert.match(result.stderr, /bucket does not exist/);
  });

  for (const [url, message] of [
    ["ftp://x/y", /unsupported scheme "ftp:"/],
    ["s3://Bad_Bucket/x", /not a valid bucket name/],
    ["s3://user:secretpw@bucket/x", /credentials do not belong/],
    ["not a url", /not a URL/],
  ] as const) {
    test(`GIVEN --bucket ${url} WHEN used THEN one clear line`, async () => {
      const result = await capsule(["pg", "--list", "--bucket", url]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, message);
      assert.doesNotMatch(result.stderr, /secretpw/);
    });
  }

  test("GIVEN a file store directory that does not exist WHEN listing THEN it says so", async () => {
    const result = await capsule(["pg", "--list", "--bucket", "file:///nonexistent/capsule-dir"]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /directory does not exist/);
  });
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 200));
  }
}
