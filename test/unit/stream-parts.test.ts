/**
 * `sendInParts`: how every multipart upload (S3 parts, Azure blocks) cuts a stream. The stores' own tests prove the
 * uploads against radosgw and Azurite; these pin the cutting itself: part boundaries and the last-part flag, the
 * bounded pool of buffers, the in-flight limit, and what a failure leaves running.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { setImmediate as tick } from "node:timers/promises";
import { describe, test } from "node:test";
import { sendInParts, type Part } from "../../src/storage/stream-parts.js";

const PART = 64 * 1024;

/** A stream of `bytes` in chunks of `chunk` bytes, each a fresh buffer as a pipe's would be. */
function chunked(bytes: Buffer, chunk: number): Readable {
  let offset = 0;
  return new Readable({
    read() {
      if (offset >= bytes.byteLength) return void this.push(null);
      this.push(Buffer.from(bytes.subarray(offset, (offset += chunk))));
    },
  });
}

interface Sent {
  readonly bytes: Buffer;
  readonly index: number;
  readonly last: boolean;
}

/** Sends with a copy of each part (its buffer is reused once the send settles), after a turn of the event loop. */
async function cut(body: Readable, concurrency = 3, maxParts = 10_000) {
  const sent: Sent[] = [];
  const buffers = new Set<ArrayBufferLike>();
  let inFlight = 0;
  let mostInFlight = 0;
  const count = await sendInParts(body, {
    partSize: PART,
    concurrency,
    maxParts,
    what: "test: put k",
    send: async (part: Part) => {
      inFlight++;
      mostInFlight = Math.max(mostInFlight, inFlight);
      buffers.add(part.bytes.buffer);
      const copy = Buffer.from(part.bytes);
      await tick();
      sent.push({ bytes: copy, index: part.index, last: part.last });
      inFlight--;
    },
  });
  sent.sort((a, b) => a.index - b.index);
  return { count, sent, buffers: buffers.size, mostInFlight };
}

describe("sendInParts", () => {
  test("GIVEN a stream of two and a half parts in odd chunks WHEN cut THEN the parts are full, in order, the last one flagged, and rejoin to the stream", async () => {
    const source = randomBytes(PART * 2 + PART / 2);
    const { count, sent } = await cut(chunked(source, 10_007));
    assert.equal(count, 3);
    assert.deepEqual(
      sent.map((p) => [p.index, p.bytes.byteLength, p.last]),
      [
        [0, PART, false],
        [1, PART, false],
        [2, PART / 2, true],
      ],
    );
    assert.ok(Buffer.concat(sent.map((p) => p.bytes)).equals(source));
  });

  test("GIVEN a stream that ends on a part boundary WHEN cut THEN its last full part is flagged last and no empty part follows", async () => {
    const source = randomBytes(PART * 3);
    const { sent } = await cut(chunked(source, PART));
    assert.deepEqual(
      sent.map((p) => [p.bytes.byteLength, p.last]),
      [
        [PART, false],
        [PART, false],
        [PART, true],
      ],
    );
    assert.ok(Buffer.concat(sent.map((p) => p.bytes)).equals(source));
  });

  test("GIVEN a stream smaller than a part WHEN cut THEN it is one part, first and last (a plain put)", async () => {
    const source = randomBytes(1000);
    const { sent } = await cut(chunked(source, 300));
    assert.deepEqual(
      sent.map((p) => [p.index, p.last]),
      [[0, true]],
    );
    assert.ok(sent[0]!.bytes.equals(source));
  });

  test("GIVEN an empty stream WHEN cut THEN one empty part is sent, first and last", async () => {
    const { sent } = await cut(Readable.from([]));
    assert.deepEqual(
      sent.map((p) => [p.index, p.bytes.byteLength, p.last]),
      [[0, 0, true]],
    );
  });

  test("GIVEN a stream of 40 parts WHEN cut with concurrency 3 THEN at most 3 parts are in flight and at most 4 buffers are ever made", async () => {
    const source = randomBytes(PART * 40);
    const { sent, buffers, mostInFlight } = await cut(chunked(source, 16 * 1024), 3);
    assert.equal(sent.length, 40);
    assert.ok(mostInFlight <= 3, `${mostInFlight} parts were in flight at once`);
    assert.ok(buffers <= 4, `${buffers} part buffers were made`);
    assert.ok(Buffer.concat(sent.map((p) => p.bytes)).equals(source));
  });

  test("GIVEN a stream longer than maxParts WHEN cut THEN it rejects with a store error naming the upload, and the stream is destroyed", async () => {
    const body = chunked(randomBytes(PART * 5), PART);
    await assert.rejects(cut(body, 2, 3), /^CapsuleError: test: put k: more than 3 parts of 65536 bytes/);
    assert.equal(body.destroyed, true);
  });

  test("GIVEN a part whose send fails WHEN cut THEN it rejects with that error only after the parts in flight settled, reads no further, and destroys the stream", async () => {
    let read = 0;
    const body = new Readable({
      read() {
        read++;
        this.push(read > 100 ? null : Buffer.alloc(PART));
      },
    });
    const settled: number[] = [];
    const failure = sendInParts(body, {
      partSize: PART,
      concurrency: 3,
      maxParts: 10_000,
      what: "test: put k",
      send: async ({ index }) => {
        await tick();
        if (index === 1) throw new Error("part 1 refused");
        await tick();
        await tick();
        settled.push(index);
      },
    });
    await assert.rejects(failure, /part 1 refused/);
    const settledAtRejection = [...settled];
    await tick();
    await tick();
    await tick();
    assert.deepEqual(settled, settledAtRejection, "a part still ran after the upload rejected");
    assert.ok(read < 20, `the stream was read ${read} times after a part failed`);
    assert.equal(body.destroyed, true);
  });

  test("GIVEN a stream that fails midway WHEN cut THEN it rejects with the stream's error", async () => {
    let read = 0;
    const body = new Readable({
      read() {
        if (++read === 5) return void this.destroy(new Error("source failed"));
        this.push(Buffer.alloc(PART / 2));
      },
    });
    await assert.rejects(cut(body), /source failed/);
  });
});
