/**
 * A backup run that never finishes: begins a run, starts an endless upload, prints the backup id, and waits to be
 * killed. Used to prove that a run killed mid-stream is never listed as succeeded.
 * Usage: tsx test/support/begin-and-hang.ts <bucket-url>
 */
import { Readable } from "node:stream";
import { openBackupStore } from "../../src/runtime/bucket.js";

const store = openBackupStore({ bucket: process.argv[2] }, process.env);
const run = await store.begin({
  cluster: "killed",
  target: "db",
  engine: "postgresql",
  trigger: { type: "manual" },
  source: {},
  tool: { capsule: "test" },
});
let sent = 0;
const endless = new Readable({
  read() {
    sent += 1 << 20;
    this.push(Buffer.alloc(1 << 20, sent & 0xff));
    if (sent === 40 << 20) process.stdout.write(`${run.ref.backupId}\n`);
  },
});
await run.uploadArtifact("dump.bin", endless);
