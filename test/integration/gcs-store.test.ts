/**
 * The GCS adapter on what only GCS has: generations as ETags, resumable uploads, crc32c checks both ways, downloads
 * resumed at the generation they began with, and GCS's failures as one clear line. Through @google-cloud/storage
 * unchanged, against the in-repo FAKE GCS (test/fakes/gcs.ts); the storage contract shared with S3 and file stores
 * is in backup-store.test.ts.
 */
import { readFileSync } from "node:fs";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { before, describe, test } from "node:test";
import { ErrorCode } from "../../src/domain/errors.js";
import { openBucket } from "../../src/storage/open-store.js";
import { readAll, type ObjectStore } from "../../src/storage/object-store.js";
import { FakeGcs, gcsBucket, gcsEnv } from "../harness/gcs.js";
import { capsule } from "../support/cli.js";
import { generatedStream, sha256Of } from "../support/streams.js";
import { withCode } from "../support/error-code.js";

const MiB = 1 << 20;

function open(fake: FakeGcs, bucket: string, env: Record<string, string> = {}): ObjectStore {
  return openBucket(`gs://${bucket}/p`, {}, { ...gcsEnv(fake), ...env }).store;
}

describe("GCS object store (fake GCS)", () => {
  let fake: FakeGcs;
  let bucket: string;
  let store: ObjectStore;
  before(async () => {
    ({ fake, bucket } = await gcsBucket("adapter"));
    store = open(fake, bucket);
  });

  test("GIVEN an object WHEN written with a stale generation or if-none-match THEN 412 is a precondition failure and nothing changes", async () => {
    const first = await store.put("cond/a", "one", { ifNoneMatch: "*" });
    assert.match(first.etag ?? "", /^\d+$/);
    await assert.rejects(
      store.put("cond/a", "two", { ifNoneMatch: "*" }),
      withCode(ErrorCode.PreconditionFailed),
    );
    const second = await store.put("cond/a", "two", { ifMatch: first.etag! });
    assert.notEqual(second.etag, first.etag);
    await assert.rejects(
      store.put("cond/a", "three", { ifMatch: first.etag! }),
      withCode(ErrorCode.PreconditionFailed),
    );
    // The resumable path checks the same precondition.
    await assert.rejects(
      store.put("cond/a", Readable.from([Buffer.from("streamed")]), { ifNoneMatch: "*" }),
      withCode(ErrorCode.PreconditionFailed),
    );
    await assert.rejects(
      store.put("cond/a", "x", { ifMatch: '"d41d8cd98f00b204"' }),
      withCode(ErrorCode.PreconditionFailed),
    );
    assert.deepEqual(await store.getWithEtag("cond/a"), { bytes: Buffer.from("two"), etag: second.etag });
    assert.equal((await store.head("cond/a"))?.etag, second.etag);
  });

  test("GIVEN 25 objects WHEN listed with pages of 4 THEN all come back once, in key order, over 7 requests", async () => {
    const keys = Array.from({ length: 25 }, (_, i) => `paged/${String((i * 7) % 25).padStart(2, "0")}`);
    for (const key of keys) await store.put(key, key);
    await store.put("pagedX", "outside the prefix");
    const before = fake.requests.length;
    const listed = [];
    for await (const o of store.list("paged/", { pageSize: 4 })) listed.push(o);
    assert.deepEqual(
      listed.map((o) => o.key),
      [...keys].sort(),
    );
    assert.ok(
      listed.every((o) => o.size === 8 && /^\d+$/.test(o.etag ?? "") && o.lastModified instanceof Date),
    );
    assert.equal(fake.requests.slice(before).filter((r) => r.includes("/o?prefix=paged")).length, 7);
  });

  test("GIVEN a 20 MiB stream WHEN put THEN it goes up as 256-KiB-aligned chunks of one resumable session and reads back whole", async () => {
    const expected = await sha256Of(generatedStream(20 * MiB, 11));
    const before = fake.requests.length;
    await store.put("stream/a", generatedStream(20 * MiB, 11));
    const requests = fake.requests.slice(before);
    assert.equal(
      requests.filter((r) => r.includes("uploadType=resumable") && r.startsWith("POST")).length,
      1,
    );
    // 8 MiB chunks: 8 + 8 + 4.
    assert.equal(requests.filter((r) => r.startsWith("PUT")).length, 3);
    assert.deepEqual(await sha256Of(await store.get("stream/a")), expected);
  });

  test("GIVEN a server that never answers a chunk WHEN a stream is put THEN the chunk's request times out and is resent from the server's offset", async () => {
    const patient = open(fake, bucket, { CAPSULE_GCS_REQUEST_TIMEOUT_MS: "1000" });
    await patient.check();
    const expected = await sha256Of(generatedStream(9 * MiB, 8));
    fake.hangNextUploadChunks(1);
    const before = fake.requests.length;
    await patient.put("hung/a", generatedStream(9 * MiB, 8));
    assert.deepEqual(await sha256Of(await store.get("hung/a")), expected);
    const puts = fake.requests.slice(before).filter((r) => r.startsWith("PUT"));
    assert.ok(puts.length > 2, `the hung chunk was sent again (${puts.length} PUTs)`);
  });

  test("GIVEN a download cut twice WHEN read THEN it resumes with a Range at the same generation and the bytes are whole", async () => {
    await store.put("cut/a", generatedStream(3 * MiB, 5));
    const expected = await sha256Of(generatedStream(3 * MiB, 5));
    const generation = (await store.head("cut/a"))?.etag;
    fake.cutNextDownloads(MiB, 512 * 1024);
    const before = fake.requests.length;
    assert.deepEqual(await sha256Of(await store.get("cut/a")), expected);
    const reads = fake.requests.slice(before).filter((r) => r.includes("alt=media"));
    assert.equal(reads.length, 3);
    assert.ok(reads.every((r) => r.includes(`generation=${generation}`)));
    assert.match(reads[1]!, /Range: bytes=\d+-$/);
    assert.match(reads[2]!, /Range: bytes=\d+-$/);
  });

  test("GIVEN a download that goes silent WHEN read THEN it is cut after the idle timeout and resumed", async () => {
    const patient = open(fake, bucket, { CAPSULE_GCS_IDLE_TIMEOUT_MS: "500" });
    await patient.put("stall/a", generatedStream(2 * MiB, 6));
    const expected = await sha256Of(generatedStream(2 * MiB, 6));
    fake.stallNextDownloads(MiB);
    const before = fake.requests.length;
    assert.deepEqual(await sha256Of(await patient.get("stall/a")), expected);
    const reads = fake.requests.slice(before).filter((r) => r.includes("alt=media"));
    assert.equal(reads.length, 2);
    assert.match(reads[1]!, /Range: bytes=\d+-$/);
  });

  test("GIVEN a read begun WHEN the object is replaced before its bytes are read THEN it fails as changed, never mixing generations", async () => {
    await store.put("replaced/a", "old bytes");
    const stream = await store.get("replaced/a");
    await store.put("replaced/a", "new bytes");
    await assert.rejects(readAll(stream), /changed while it was read/);
    // A read-modify-write read retries the new generation instead.
    assert.equal((await store.getWithEtag("replaced/a")).bytes.toString(), "new bytes");
  });

  test("GIVEN a stored byte flipped WHEN read THEN the crc32c mismatch is caught", async () => {
    await store.put("rot/a", generatedStream(2 * MiB, 3));
    await store.put("rot/small", "statefile bytes");
    fake.corruptObject(bucket, "rot/a", 1234);
    fake.corruptObject(bucket, "rot/small", 3);
    await assert.rejects(readAll(await store.get("rot/a")), withCode(ErrorCode.ChecksumMismatch));
    await assert.rejects(store.getWithEtag("rot/small"), withCode(ErrorCode.ChecksumMismatch));
  });

  test("GIVEN bytes corrupted on the way in WHEN put THEN the mismatch with GCS's crc32c fails the put and no object is left", async () => {
    fake.corruptNextUpload();
    await assert.rejects(store.put("bad/small", "some statefile"), withCode(ErrorCode.ChecksumMismatch));
    assert.equal(await store.head("bad/small"), undefined);
    fake.corruptNextUpload();
    await assert.rejects(
      store.put("bad/big", generatedStream(9 * MiB, 2)),
      withCode(ErrorCode.ChecksumMismatch),
    );
    assert.equal(await store.head("bad/big"), undefined);
  });

  test("GIVEN a missing object WHEN read, headed or deleted THEN not found, undefined, and deleting succeeds", async () => {
    await assert.rejects(store.get("nothing"), withCode(ErrorCode.NotFound));
    await assert.rejects(store.getWithEtag("nothing"), withCode(ErrorCode.NotFound));
    assert.equal(await store.head("nothing"), undefined);
    await store.delete("nothing");
  });

  test("GIVEN a bucket that does not exist WHEN checked, listed, written or read THEN it says so", async () => {
    const missing = open(fake, "no-such-bucket-here");
    const noBucket = withCode(ErrorCode.StoreNoSuchBucket);
    await assert.rejects(missing.check(), noBucket);
    await assert.rejects(readAll(Readable.from(missing.list(""))), noBucket);
    await assert.rejects(missing.put("k", "v"), noBucket);
    await assert.rejects(missing.put("k", generatedStream(MiB, 1)), noBucket);
    await assert.rejects(missing.get("k"), noBucket);
  });

  test("GIVEN GCS refusing the request's credentials WHEN checked THEN access denied in one line", async () => {
    fake.acceptedTokens = new Set(["ya29.only-this-one"]);
    try {
      await assert.rejects(store.check(), (error: unknown) => {
        assert.equal((error as { code?: string }).code, ErrorCode.StoreAccessDenied);
        assert.match(String((error as Error).message), /access denied .*GOOGLE_APPLICATION_CREDENTIALS/);
        assert.equal((error as Error).message.split("\n").length, 1);
        return true;
      });
    } finally {
      fake.acceptedTokens = undefined;
    }
  });
});

describe("capsule with a gs:// bucket", () => {
  let fake: FakeGcs;
  let bucket: string;
  let keyFile: string;
  let privateKey: string;
  before(async () => {
    ({ fake, bucket } = await gcsBucket("cli"));
    // A syntactically valid service-account key, as cnvrg's Secret holds it as key.json.
    privateKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({
      type: "pkcs8",
      format: "pem",
    }) as string;
    keyFile = path.join(await mkdtemp(path.join(tmpdir(), "capsule-gcs-key-")), "key.json");
    await writeFile(
      keyFile,
      JSON.stringify({
        type: "service_account",
        project_id: "capsule-test",
        private_key_id: "0123456789abcdef0123456789abcdef01234567",
        private_key: privateKey,
        client_email: "capsule@capsule-test.iam.gserviceaccount.com",
        client_id: "100000000000000000000",
        auth_uri: "https://accounts.google.com/o/oauth2/auth",
        token_uri: "https://oauth2.googleapis.com/token",
      }),
    );
  });

  test("GIVEN GOOGLE_APPLICATION_CREDENTIALS and STORAGE_EMULATOR_HOST WHEN listing THEN the emulator answers without a token", async () => {
    const env = { ...gcsEnv(fake), GOOGLE_APPLICATION_CREDENTIALS: keyFile };
    const before = fake.requests.length;
    const result = await capsule(["pg", "--list", "--bucket", `gs://${bucket}/backups`, "-o", "json"], env);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), []);
    assert.ok(fake.requests.length > before, "the fake was asked");
    assert.doesNotMatch(result.stdout + result.stderr, /PRIVATE KEY/);
  });

  test("GIVEN the key's content in CAPSULE_GCS_CREDENTIALS_JSON (what --cluster reads from the key Secret) WHEN listing THEN it is used, and a malformed one is one line that quotes none of it", async () => {
    const key = readFileSync(keyFile, "utf8");
    const good = await capsule(["pg", "--list", "--bucket", `gs://${bucket}/backups`, "-o", "json"], {
      ...gcsEnv(fake),
      CAPSULE_GCS_CREDENTIALS_JSON: key,
    });
    assert.equal(good.code, 0, good.stderr);
    const bad = await capsule(["pg", "--list", "--bucket", `gs://${bucket}`], {
      ...gcsEnv(fake),
      CAPSULE_GCS_CREDENTIALS_JSON: key.slice(0, 120),
    });
    assert.equal(bad.code, 1);
    assert.equal(bad.stderr.trim().split("\n").length, 1, bad.stderr);
    assert.match(bad.stderr, /CAPSULE_GCS_CREDENTIALS_JSON: the value is not JSON/);
    assert.doesNotMatch(bad.stderr, /PRIVATE KEY|service_account/);
  });

  test("GIVEN GOOGLE_APPLICATION_CREDENTIALS naming no file WHEN listing THEN one line naming the variable", async () => {
    const env = { ...gcsEnv(fake), GOOGLE_APPLICATION_CREDENTIALS: "/nonexistent/key.json" };
    const result = await capsule(["pg", "--list", "--bucket", `gs://${bucket}`], env);
    assert.equal(result.code, 1);
    assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
    assert.match(
      result.stderr,
      /GOOGLE_APPLICATION_CREDENTIALS: cannot read the key file "\/nonexistent\/key.json" \(ENOENT\)/,
    );
  });

  test("GIVEN an emulator host nobody listens on WHEN listing THEN unreachable in one line", async () => {
    const result = await capsule(["pg", "--list", "--bucket", `gs://${bucket}`], {
      STORAGE_EMULATOR_HOST: "http://127.0.0.1:9",
    });
    assert.equal(result.code, 1);
    assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
    assert.match(result.stderr, /endpoint unreachable \(ECONNREFUSED\)/);
  });

  test("GIVEN a bucket that does not exist WHEN listing THEN it says so in one line", async () => {
    const result = await capsule(["pg", "--list", "--bucket", "gs://not-created-here"], gcsEnv(fake));
    assert.equal(result.code, 1);
    assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
    assert.match(result.stderr, /gs:\/\/not-created-here .*bucket does not exist/);
  });

  for (const [url, message] of [
    ["gs://Bad_Bucket/x", /not a valid GCS bucket name/],
    ["gs://google-backups/x", /no "goog" prefix and no "google"/],
    ["gs://ab/x", /3 to 63 characters/],
    ["gs://user:secretpw@bucket/x", /credentials do not belong/],
    ["gs://bucket/.hidden", /bucket prefix "\.hidden" is not safe/],
  ] as const) {
    test(`GIVEN --bucket ${url} WHEN used THEN one clear line`, async () => {
      const result = await capsule(["pg", "--list", "--bucket", url], gcsEnv(fake));
      assert.equal(result.code, 1);
      assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
      assert.match(result.stderr, message);
      assert.doesNotMatch(result.stderr, /secretpw/);
    });
  }

  test("GIVEN a gs:// bucket WHEN --endpoint is given THEN refused: it is an S3 setting", async () => {
    const result = await capsule(
      ["pg", "--list", "--bucket", `gs://${bucket}`, "--endpoint", "http://127.0.0.1:1"],
      gcsEnv(fake),
    );
    assert.equal(result.code, 1);
    assert.match(result.stderr, /--endpoint, --region and --sse are for s3:\/\/ buckets/);
  });
});
