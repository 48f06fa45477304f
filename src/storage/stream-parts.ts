/**
 * Cuts a stream into parts for a multipart upload (S3 parts, Azure blocks) in constant memory: a fixed pool of
 * part-sized buffers the stream's chunks are copied into, at most `concurrency` parts in flight, and a buffer back in
 * the pool as soon as its part is sent. While every part in flight waits out an outage the stream is not read, so
 * the producer blocks on back-pressure. Memory: (concurrency + 1) × part size, however late the GC runs — a part
 * buffer is never garbage (docs/adr/0004).
 */
import type { Readable } from "node:stream";
import { CapsuleError, ErrorCode } from "../domain/errors.js";

export interface Part {
  /** The part's bytes: only valid until `send` settles, when the buffer goes back to the pool. */
  readonly bytes: Buffer;
  /** From 0, in stream order. */
  readonly index: number;
  /** No bytes follow. An empty part is only ever sent for an empty stream, as part 0 and last. */
  readonly last: boolean;
}

export interface StreamPartsOptions {
  readonly partSize: number;
  readonly concurrency: number;
  readonly maxParts: number;
  /** Called in stream order, one part at a time; resolves once the part is stored (retries included). */
  readonly send: (part: Part) => Promise<void>;
  /** What is being uploaded, for the error of a stream longer than `maxParts` parts (`s3://b: put k`). */
  readonly what: string;
}

/**
 * Sends `body` as parts and resolves once every part is stored, with how many there were. On any failure (the
 * stream's or a part's) it destroys the stream, waits for the parts still in flight to settle, and rejects with the
 * error that stopped it: what the store holds of an unfinished upload is the caller's to discard.
 */
export async function sendInParts(body: Readable, options: StreamPartsOptions): Promise<number> {
  const { partSize, concurrency, maxParts } = options;
  const pool: Buffer[] = [];
  const inFlight = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  let sent = 0;

  const dispatch = (bytes: Buffer, last: boolean) => {
    if (sent >= maxParts) {
      throw new CapsuleError(
        ErrorCode.StoreError,
        `${options.what}: more than ${maxParts} parts of ${partSize} bytes: the size estimate was far too low`,
      );
    }
    const part: Part = { bytes, index: sent++, last };
    const settled: Promise<void> = options.send(part).then(
      () => {
        inFlight.delete(settled);
        if (bytes.byteLength === partSize) pool.push(bytes);
      },
      (error: unknown) => {
        inFlight.delete(settled);
        failure ??= { error };
      },
    );
    inFlight.add(settled);
  };
  const drainTo = async (limit: number) => {
    while (inFlight.size > limit) await Promise.race(inFlight);
    if (failure) throw failure.error;
  };

  try {
    // A full buffer is held until the next byte arrives, so its part knows whether it is the last: a stream that
    // fits in one part is one plain put, and a stream that ends on a part boundary sends no empty part.
    let buffer: Buffer = Buffer.allocUnsafeSlow(partSize);
    let filled = 0;
    for await (const chunk of body) {
      const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
      for (let offset = 0; offset < bytes.byteLength;) {
        if (filled === partSize) {
          dispatch(buffer, false);
          await drainTo(concurrency - 1);
          buffer = pool.pop() ?? Buffer.allocUnsafeSlow(partSize);
          filled = 0;
        }
        const n = Math.min(partSize - filled, bytes.byteLength - offset);
        bytes.copy(buffer, filled, offset, offset + n);
        filled += n;
        offset += n;
      }
    }
    dispatch(filled === partSize ? buffer : buffer.subarray(0, filled), true);
    await drainTo(0);
    return sent;
  } catch (error) {
    body.destroy();
    await Promise.allSettled(inFlight);
    throw error;
  }
}
