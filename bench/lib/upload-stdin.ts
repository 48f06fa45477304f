/**
 * capsule's side of bench/storage: one backup run whose artifact is stdin, through the real BackupStore and S3
 * store (begin → upload while hashing → commit). Prints the backup id and digest.
 *   node bench/lib/upload-stdin.js s3://bucket/prefix SIZE_HINT   (compiled by bench/lib/build.ts)
 */
import { openBackupStore } from "../../src/runtime/bucket.js";

const store = openBackupStore({ bucket: process.argv[2] }, process.env);
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
