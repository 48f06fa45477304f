/**
 * The FAKE GCS (test/fakes/gcs.ts) for tests: no GCS emulator can run here, so this starts the in-repo fake in the
 * test's own process (tests reach into it to corrupt objects) and gives capsule the environment that points it
 * there, as Google's client libraries read it.
 */
import { FakeGcs } from "../fakes/gcs.js";
import { uniqueName } from "./index.js";

export { FakeGcs };

let shared: Promise<FakeGcs> | undefined;

/** One fake per test process, which does not keep the process alive once its tests are done. */
export function fakeGcs(): Promise<FakeGcs> {
  shared ??= FakeGcs.start().then((fake) => fake.unref());
  return shared;
}

/** A new, empty bucket on the fake. */
export async function gcsBucket(prefix = "bucket"): Promise<{ fake: FakeGcs; bucket: string }> {
  const fake = await fakeGcs();
  const bucket = uniqueName(prefix);
  fake.createBucket(bucket);
  return { fake, bucket };
}

/** The environment that points capsule (and any Google client library) at the fake. */
export function gcsEnv(fake: FakeGcs): Record<string, string> {
  return { STORAGE_EMULATOR_HOST: fake.url };
}
