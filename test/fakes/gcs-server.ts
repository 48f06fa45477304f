/**
 * The FAKE GCS (test/fakes/gcs.ts) as a process of its own, for benchmarks that must measure capsule's memory
 * without the fake's. Creates the named buckets, prints its URL on stdout, then serves until killed.
 *
 *   tsx test/fakes/gcs-server.ts [bucket ...]
 */
import { FakeGcs } from "./gcs.js";

const fake = await FakeGcs.start();
for (const bucket of process.argv.slice(2)) fake.createBucket(bucket);
process.stdout.write(`${fake.url}\n`);
process.on("SIGTERM", () => void fake.close().then(() => process.exit(0)));
