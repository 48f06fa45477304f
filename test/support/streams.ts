import { createHash } from "node:crypto";
import { Readable } from "node:stream";

/**
 * A deterministic pseudo-random byte stream of `size` bytes (incompressible, cheap to make), with its sha256
 * computed up front so a test can compare what comes back.
 */
export function generatedStream(size: number, seed = 1, options: { failAfter?: number } = {}): Readable {
  const chunkSize = 1 << 20;
  let sent = 0;
  let state = seed >>> 0 || 1;
  return new Readable({
    read() {
      if (options.failAfter !== undefined && sent >= options.failAfter) {
        this.destroy(new Error("source failed mid-stream (test)"));
        return;
      }
      if (sent >= size) {
        this.push(null);
        return;
      }
      const n = Math.min(chunkSize, size - sent);
      const buf = Buffer.allocUnsafe(n);
      for (let i = 0; i + 4 <= n; i += 4) {
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        buf.writeUInt32LE(state >>> 0, i);
      }
      for (let i = n - (n % 4); i < n; i++) buf[i] = i & 0xff;
      sent += n;
      this.push(buf);
    },
  });
}

export async function sha256Of(stream: Readable): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest("hex"), bytes };
}
