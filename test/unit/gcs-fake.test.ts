/**
 * The FAKE GCS's self-test: drives test/fakes/gcs.ts over plain HTTP, with the requests and answers the GCS JSON API
 * documents, so the adapter's tests rest on a fake that behaves like GCS where capsule depends on it.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { FakeGcs, crc32cBase64 } from "../fakes/gcs.js";

const KiB = 1024;

describe("fake GCS (wire behaviour)", () => {
  let fake: FakeGcs;
  const bucket = "self-test";
  const api = (path: string) => `${fake.url}/storage/v1/b/${bucket}${path}`;
  const upload = (query: string) => `${fake.url}/upload/storage/v1/b/${bucket}/o?${query}`;

  before(async () => {
    fake = await FakeGcs.start();
    fake.createBucket(bucket);
  });
  after(() => fake.close());

  async function media(name: string, body: string | Buffer, query = ""): Promise<Response> {
    return fetch(upload(`uploadType=media&name=${encodeURIComponent(name)}${query}`), {
      method: "POST",
      body: typeof body === "string" ? body : new Uint8Array(body),
    });
  }

  test("GIVEN a missing bucket WHEN got THEN 404 with a GCS error body; an existing one answers its metadata", async () => {
    const missing = await fetch(`${fake.url}/storage/v1/b/no-such-bucket`);
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), {
      error: {
        code: 404,
        message: "The specified bucket does not exist.",
        errors: [{ message: "The specified bucket does not exist.", domain: "global", reason: "notFound" }],
      },
    });
    const found = await fetch(api(""));
    assert.equal(found.status, 200);
    assert.equal(((await found.json()) as { name: string }).name, bucket);
    // STORAGE_EMULATOR_HOST clients leave out /storage/v1.
    assert.equal((await fetch(`${fake.url}/b/${bucket}`)).status, 200);
  });

  test("GIVEN bytes WHEN uploaded THEN crc32c and md5Hash are GCS's base64 forms and the generation is a string", async () => {
    assert.equal(crc32cBase64(Buffer.from("123456789")), Buffer.from("e3069283", "hex").toString("base64"));
    const res = await media("checks/a", "hello gcs");
    assert.equal(res.status, 200);
    const meta = (await res.json()) as Record<string, string>;
    assert.equal(meta["md5Hash"], createHash("md5").update("hello gcs").digest("base64"));
    assert.equal(meta["crc32c"], crc32cBase64(Buffer.from("hello gcs")));
    assert.equal(meta["size"], "9");
    assert.match(meta["generation"]!, /^\d+$/);
  });

  test("GIVEN a multipart upload WHEN sent THEN metadata and media parts make the object", async () => {
    const boundary = "b0undary";
    const body = Buffer.concat([
      Buffer.from(
        `--${boundary}\r\nContent-Type: application/json\r\n\r\n${JSON.stringify({ name: "mp/x", contentType: "text/plain" })}\r\n--${boundary}\r\nContent-Type: text/plain\r\n\r\n`,
      ),
      Buffer.from("multi\r\npart"),
      Buffer.from(`\r\n--${boundary}--`),
    ]);
    const res = await fetch(upload("uploadType=multipart"), {
      method: "POST",
      headers: { "content-type": `multipart/related; boundary=${boundary}` },
      body,
    });
    assert.equal(res.status, 200);
    const got = await fetch(api("/o/mp%2Fx?alt=media"));
    assert.equal(await got.text(), "multi\r\npart");
    assert.equal(got.headers.get("content-type"), "text/plain");
  });

  test("GIVEN ifGenerationMatch WHEN it does not hold THEN 412 conditionNotMet; 0 means the object must not exist", async () => {
    const first = (await (await media("cond/a", "one", "&ifGenerationMatch=0")).json()) as {
      generation: string;
    };
    const again = await media("cond/a", "two", "&ifGenerationMatch=0");
    assert.equal(again.status, 412);
    const body = (await again.json()) as { error: { errors: Array<{ reason: string }> } };
    assert.equal(body.error.errors[0]?.reason, "conditionNotMet");
    const second = await media("cond/a", "two", `&ifGenerationMatch=${first.generation}`);
    assert.equal(second.status, 200);
    const stale = await media("cond/a", "three", `&ifGenerationMatch=${first.generation}`);
    assert.equal(stale.status, 412);
    // The old generation is gone (no versioning): a read pinned to it is 404.
    assert.equal((await fetch(api(`/o/cond%2Fa?alt=media&generation=${first.generation}`))).status, 404);
    assert.equal(await (await fetch(api("/o/cond%2Fa?alt=media"))).text(), "two");
  });

  test("GIVEN a resumable session WHEN chunks arrive THEN 308 with the persisted Range until the last one creates the object", async () => {
    const start = await fetch(upload("uploadType=resumable&name=big%2Fobj&ifGenerationMatch=0"), {
      method: "POST",
      headers: { "content-type": "application/json", "x-upload-content-type": "application/x-test" },
      body: "{}",
    });
    assert.equal(start.status, 200);
    const session = start.headers.get("location")!;
    assert.match(session, /upload_id=/);
    const data = Buffer.alloc(600 * KiB);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    const put = (range: string, body?: Buffer) =>
      fetch(session, {
        method: "PUT",
        headers: { "content-range": range },
        ...(body ? { body: new Uint8Array(body) } : {}),
      });

    const odd = await put(`bytes 0-${100 * KiB - 1}/*`, data.subarray(0, 100 * KiB));
    assert.equal(odd.status, 400, "a non-final chunk must be a multiple of 256 KiB");
    const first = await put(`bytes 0-${256 * KiB - 1}/*`, data.subarray(0, 256 * KiB));
    assert.equal(first.status, 308);
    assert.equal(first.headers.get("range"), `bytes=0-${256 * KiB - 1}`);
    // A chunk that does not start where the server is: ignored, and the persisted range says where to resume.
    const skipped = await put(`bytes ${512 * KiB}-${768 * KiB - 1}/*`, data.subarray(0, 256 * KiB));
    assert.equal(skipped.status, 308);
    assert.equal(skipped.headers.get("range"), `bytes=0-${256 * KiB - 1}`);
    const status = await put("bytes */*");
    assert.equal(status.status, 308);
    assert.equal(status.headers.get("range"), `bytes=0-${256 * KiB - 1}`);
    assert.equal((await fetch(api("/o/big%2Fobj"))).status, 404, "no object before the last chunk");
    const last = await put(`bytes ${256 * KiB}-${data.length - 1}/${data.length}`, data.subarray(256 * KiB));
    assert.equal(last.status, 200);
    const meta = (await last.json()) as Record<string, string>;
    assert.equal(meta["size"], String(data.length));
    assert.equal(meta["crc32c"], crc32cBase64(data));
    assert.equal(meta["contentType"], "application/x-test");
    const back = Buffer.from(await (await fetch(api("/o/big%2Fobj?alt=media"))).arrayBuffer());
    assert.ok(back.equals(data));
  });

  test("GIVEN a resumable session WHEN the whole object comes in one open-ended request THEN it is created", async () => {
    const start = await fetch(upload("uploadType=resumable&name=streamed"), { method: "POST" });
    const session = start.headers.get("location")!;
    const body = new Uint8Array(300 * KiB).fill(9);
    const res = await fetch(session, { method: "PUT", headers: { "content-range": "bytes 0-*/*" }, body });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { size: string }).size, String(body.length));
  });

  test("GIVEN a resumable session with ifGenerationMatch WHEN the object appears meanwhile THEN the last chunk is 412", async () => {
    const start = await fetch(upload("uploadType=resumable&name=race&ifGenerationMatch=0"), {
      method: "POST",
    });
    const session = start.headers.get("location")!;
    await media("race", "the other writer");
    const last = await fetch(session, {
      method: "PUT",
      headers: { "content-range": "bytes 0-2/3" },
      body: "abc",
    });
    assert.equal(last.status, 412);
    assert.equal(await (await fetch(api("/o/race?alt=media"))).text(), "the other writer");
  });

  test("GIVEN an X-Goog-Hash that does not match the bytes WHEN uploaded THEN 400 and no object", async () => {
    const res = await fetch(upload("uploadType=media&name=hashed"), {
      method: "POST",
      headers: { "x-goog-hash": `crc32c=${crc32cBase64(Buffer.from("other"))}` },
      body: "bytes",
    });
    assert.equal(res.status, 400);
    assert.equal((await fetch(api("/o/hashed"))).status, 404);
  });

  test("GIVEN an object WHEN read with a Range THEN 206 with Content-Range; whole reads carry x-goog-hash and the generation", async () => {
    const meta = (await (await media("ranged", "0123456789")).json()) as Record<string, string>;
    const part = await fetch(api("/o/ranged?alt=media"), { headers: { range: "bytes=3-5" } });
    assert.equal(part.status, 206);
    assert.equal(await part.text(), "345");
    assert.equal(part.headers.get("content-range"), "bytes 3-5/10");
    const tail = await fetch(api("/o/ranged?alt=media"), { headers: { range: "bytes=7-" } });
    assert.equal(await tail.text(), "789");
    const past = await fetch(api("/o/ranged?alt=media"), { headers: { range: "bytes=10-" } });
    assert.equal(past.status, 416);
    const whole = await fetch(api("/o/ranged?alt=media"));
    assert.equal(whole.headers.get("x-goog-hash"), `crc32c=${meta["crc32c"]},md5=${meta["md5Hash"]}`);
    assert.equal(whole.headers.get("x-goog-generation"), meta["generation"]);
    assert.equal(whole.headers.get("x-goog-stored-content-encoding"), "identity");
  });

  test("GIVEN names WHEN listed with a prefix and small pages THEN every name once, in byte order", async () => {
    const names = ["ls/b", "ls/a/2", "ls/a/1", "ls/B", "ls/é", "ls/z", "other/x"];
    for (const name of names) await media(name, name);
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const res = await fetch(api(`/o?prefix=ls%2F&maxResults=2${token ? `&pageToken=${token}` : ""}`));
      const page = (await res.json()) as { items?: Array<{ name: string }>; nextPageToken?: string };
      assert.ok((page.items?.length ?? 0) <= 2);
      seen.push(...(page.items ?? []).map((i) => i.name));
      token = page.nextPageToken;
      pages++;
    } while (token);
    assert.deepEqual(seen, ["ls/B", "ls/a/1", "ls/a/2", "ls/b", "ls/z", "ls/é"]);
    assert.equal(pages, 3);
    const grouped = (await (await fetch(api("/o?prefix=ls%2F&delimiter=%2F"))).json()) as {
      items: Array<{ name: string }>;
      prefixes: string[];
    };
    assert.deepEqual(grouped.prefixes, ["ls/a/"]);
    assert.deepEqual(
      grouped.items.map((i) => i.name),
      ["ls/B", "ls/b", "ls/z", "ls/é"],
    );
  });

  test("GIVEN an object WHEN deleted THEN 204, then 404 with a GCS error body", async () => {
    await media("gone", "x");
    assert.equal((await fetch(api("/o/gone"), { method: "DELETE" })).status, 204);
    const again = await fetch(api("/o/gone"), { method: "DELETE" });
    assert.equal(again.status, 404);
    assert.match(((await again.json()) as { error: { message: string } }).error.message, /No such object/);
  });

  test("GIVEN accepted tokens WHEN a request carries none or another THEN 401 authError", async () => {
    fake.acceptedTokens = new Set(["ya29.good"]);
    try {
      const none = await fetch(api(""));
      assert.equal(none.status, 401);
      const body = (await none.json()) as { error: { errors: Array<{ reason: string }> } };
      assert.equal(body.error.errors[0]?.reason, "authError");
      assert.equal((await fetch(api(""), { headers: { authorization: "Bearer ya29.bad" } })).status, 401);
      assert.equal((await fetch(api(""), { headers: { authorization: "Bearer ya29.good" } })).status, 200);
    } finally {
      fake.acceptedTokens = undefined;
    }
  });
});
