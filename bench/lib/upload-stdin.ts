/**
 * capsule's side of bench/storage and bench/encryption: one backup run whose artifact is stdin, through the real
 * BackupStore and S3 store (begin → [encrypt →] upload while hashing → commit). Prints the backup id and digest.
 * BENCH_ENCRYPT_TO (comma-separated age recipients) turns on client-side encryption.
 *   node bench/lib/upload-stdin.js s3://bucket/prefix SIZE_HINT   (compiled by bench/lib/build.ts)
 */
import { openBackupStore } from "../../src/runtime/bucket.js";

const encryptTo = process.env["BENCH_ENCRYPT_TO"]?.split(",");
const store = openBackupStore({ bucket: process.argv[2] }, process.env, encryptTo ? { encryptTo } : {});
const run = await store.begin({
  cluster: "bench",
  target: "storage",
  engine: "postgresql",
  trigger: { type: "manual" },
  source: {},
  tool: { capsule: "bench" },
});
const uploaded = await run.uploadArtifact("stream.bin", process.stdin, { sizeHint: Number(process.argv[3]) });
await run.commit({
  artifact: {
    name: "stream.bin",
    format: "bench",
    compression: "none",
    ...uploaded,
  },
});
console.log(`${run.ref.backupId} ${uploaded.sizeBytes} ${uploaded.sha256}`);
