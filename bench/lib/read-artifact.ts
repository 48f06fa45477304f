/**
 * Reads one backup's artifact through the real BackupStore — stored-bytes digest checked, decrypted with
 * CAPSULE_AGE_IDENTITY when encrypted, plaintext digest checked — and drops it: the read path of a restore.
 *   node bench/lib/read-artifact.js s3://bucket/prefix BACKUP_ID   (compiled by bench/lib/build.ts)
 */
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { identitiesFromEnv } from "../../src/runtime/encryption.js";
import { openBackupStore } from "../../src/runtime/bucket.js";

const store = openBackupStore({ bucket: process.argv[2] }, process.env, {
  identities: identitiesFromEnv(process.env),
});
const entry = await store.get({ cluster: "bench", engine: "postgresql", backupId: process.argv[3]! });
let bytes = 0;
await pipeline(
  await store.openArtifact(entry),
  new Writable({
    write(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      callback();
    },
  }),
);
console.log(`${bytes}`);
