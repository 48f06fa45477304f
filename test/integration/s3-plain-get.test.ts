/**
 * The S3 adapter's small-object reads (storage/s3-plain-get.ts) go around the SDK's middleware, so they are checked
 * here against real radosgw for what the middleware used to do: escaping and signing of any key, the ETag, and
 * failures classified as every other S3 request's (missing, denied, unreachable after the retry window).
 */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { ErrorCode } from "../../src/domain/errors.js";
import { openBucket } from "../../src/storage/open-store.js";
import type { ObjectStore } from "../../src/storage/object-store.js";
import { createBucket, s3Env, testServers, uniqueName, type TestServers } from "../harness/index.js";
import { withCode } from "../support/error-code.js";

describe("S3 small-object reads without the SDK's middleware (radosgw)", () => {
  let servers: TestServers;
  let bucket: string;
  let store: ObjectStore;
  before(async () => {
    servers = await testServers();
    bucket = uniqueName("plain-get");
    await createBucket(servers.s3, bucket);
    store = openBucket(`s3://${bucket}/p`, {}, s3Env(servers.s3)).store;
  });

  test("GIVEN keys with spaces, plus signs, unicode and reserved characters WHEN read THEN the bytes and ETag are the ones stored", async () => {
    for (const key of [
      "p/a b/c+d.json",
      "p/ünï/ç=&?#%.json",
      "p/x/y~z*(1)'!.json",
      "p/deep/ly/nested/statefile.json",
    ]) {
      const body = `{"key":${JSON.stringify(key)}}`;
      const { etag } = await store.put(key, body);
      const read = await store.getWithEtag(key);
      assert.equal(read.bytes.toString(), body, key);
      assert.equal(read.etag, etag, key);
      assert.equal(read.etag, (await store.head(key))?.etag, key);
    }
  });

  test("GIVEN an empty object WHEN read THEN no bytes, and its ETag", async () => {
    await store.put("p/empty", "");
    const read = await store.getWithEtag("p/empty");
    assert.equal(read.bytes.length, 0);
    assert.ok(read.etag);
  });

  test("GIVEN a missing key WHEN read THEN not found, as from the SDK", async () => {
    await assert.rejects(store.getWithEtag("p/nothing/here.json"), withCode(ErrorCode.NotFound));
  });

  test("GIVEN a wrong secret key WHEN read THEN access denied in one line naming the store, without a secret", async () => {
    const env = { ...s3Env(servers.s3), AWS_SECRET_ACCESS_KEY: "not-the-secret-0123456789" };
    const wrong = openBucket(`s3://${bucket}/p`, {}, env).store;
    await store.put("p/guarded.json", "{}");
    await assert.rejects(wrong.getWithEtag("p/guarded.json"), (error: Error) => {
      assert.equal((error as { code?: string }).code, ErrorCode.StoreAccessDenied, String(error));
      assert.match(error.message, new RegExp(`s3://${bucket}`));
      assert.doesNotMatch(error.message, /not-the-secret/);
      assert.doesNotMatch(error.message, /\n/);
      return true;
    });
  });

  test("GIVEN a bucket that does not exist WHEN read THEN its bucket is named missing", async () => {
    const none = openBucket(`s3://${uniqueName("absent")}/p`, {}, s3Env(servers.s3)).store;
    await assert.rejects(none.getWithEtag("p/x.json"), (error: Error) => {
      assert.match(error.message, /bucket/i, String(error));
      return true;
    });
  });

  test("GIVEN no server at the endpoint WHEN read THEN unreachable after the retry window, with its attempts", async () => {
    const env = {
      ...s3Env(servers.s3),
      AWS_ENDPOINT_URL_S3: "http://127.0.0.1:9",
      CAPSULE_S3_RETRY_WINDOW_MS: "1500",
    };
    const away = openBucket(`s3://${bucket}/p`, {}, env).store;
    await assert.rejects(away.getWithEtag("p/x.json"), (error: Error) => {
      assert.equal((error as { code?: string }).code, ErrorCode.StoreUnreachable, String(error));
      assert.match(error.message, /after \d+ attempts/);
      return true;
    });
  });
});
