/**
 * Server-side encryption reaches the wire: a loopback HTTP server that answers like S3 records every request's
 * headers, because the harness' radosgw accepts SSE-S3/KMS only with a KMS backend configured (docs/adr/0011).
 */
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { S3ObjectStore } from "../../src/storage/s3-object-store.js";

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

/** Just enough of S3 for PutObject and a multipart upload. */
function captureServer(seen: Seen[]): Server {
  return createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers });
      const url = new URL(req.url ?? "/", "http://x");
      res.setHeader("ETag", '"0123456789abcdef0123456789abcdef"');
      if (req.method === "POST" && url.searchParams.has("uploads")) {
        res.setHeader("Content-Type", "application/xml");
        res.end(
          `<?xml version="1.0"?><InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>` +
            `<UploadId>up1</UploadId></InitiateMultipartUploadResult>`,
        );
      } else if (req.method === "POST" && url.searchParams.has("uploadId")) {
        res.setHeader("Content-Type", "application/xml");
        res.end(
          `<?xml version="1.0"?><CompleteMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>` +
            `<ETag>"0123456789abcdef0123456789abcdef-2"</ETag></CompleteMultipartUploadResult>`,
        );
      } else {
        res.end();
      }
    });
  });
}

describe("S3 server-side encryption", () => {
  const seen: Seen[] = [];
  let server: Server;
  let endpoint: string;

  before(async () => {
    server = captureServer(seen);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(() => {
    server.close();
  });

  const store = (serverSideEncryption?: { algorithm: "AES256" | "aws:kms"; kmsKeyId?: string }) =>
    new S3ObjectStore({
      bucket: "b",
      endpoint,
      credentials: { accessKeyId: "test", secretAccessKey: "test-secret" },
      maxAttempts: 1,
      ...(serverSideEncryption ? { serverSideEncryption } : {}),
    });

  test("GIVEN aws:kms with a key id WHEN a statefile and a multipart artifact are put THEN PutObject and CreateMultipartUpload both ask for it, and the parts do not", async () => {
    seen.length = 0;
    const s3 = store({ algorithm: "aws:kms", kmsKeyId: "alias/capsule" });
    await s3.put("p/statefile.json", "{}");
    await s3.put("p/artifact", Readable.from([Buffer.alloc(9 * 1024 * 1024, 1)]));
    const put = seen.find((r) => r.method === "PUT" && r.url.startsWith("/b/p/statefile.json"));
    const create = seen.find((r) => r.method === "POST" && r.url.includes("uploads"));
    const parts = seen.filter((r) => r.method === "PUT" && r.url.includes("partNumber="));
    for (const request of [put, create]) {
      assert.ok(request);
      assert.equal(request.headers["x-amz-server-side-encryption"], "aws:kms");
      assert.equal(request.headers["x-amz-server-side-encryption-aws-kms-key-id"], "alias/capsule");
    }
    assert.equal(parts.length, 2);
    for (const part of parts) assert.equal(part.headers["x-amz-server-side-encryption"], undefined);
  });

  test("GIVEN AES256 WHEN a small object is put THEN the header says AES256 and names no key; without SSE there is no header", async () => {
    seen.length = 0;
    await store({ algorithm: "AES256" }).put("p/a", "x");
    await store().put("p/b", "x");
    assert.equal(seen[0]?.headers["x-amz-server-side-encryption"], "AES256");
    assert.equal(seen[0]?.headers["x-amz-server-side-encryption-aws-kms-key-id"], undefined);
    assert.equal(seen[1]?.headers["x-amz-server-side-encryption"], undefined);
  });
});
