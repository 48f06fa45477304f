/**
 * Writes N pseudo-random bytes to stdout, fast: a 4 MiB random block repeated with a running counter stamped into
 * each MiB so no two MiB are identical (nothing downstream can deduplicate). Incompressible by construction.
 *   node bench/lib/generate.js BYTES   (compiled by bench/lib/build.ts)
 */
import { randomBytes } from "node:crypto";

const total = Number(process.argv[2]);
const block = randomBytes(4 << 20);
let sent = 0;
let counter = 0;

function pump(): void {
  while (sent < total) {
    const n = Math.min(1 << 20, total - sent);
    const offset = (counter % 4) << 20;
    const chunk = Buffer.from(block.subarray(offset, offset + n));
    chunk.writeUInt32LE(counter++ >>> 0, 0);
    sent += n;
    if (!process.stdout.write(chunk)) {
      process.stdout.once("drain", pump);
      return;
    }
  }
  process.stdout.end();
}
pump();
