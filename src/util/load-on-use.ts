/**
 * A package loaded the first time it is used, not when capsule starts. Every command used to load the S3 and GCS
 * SDKs and the age library at start-up, whatever its bucket: 0.49 s and 143 MB of RSS for `capsule --version`, most
 * of it SDKs the run never called (docs/adr/0020, "Start-up"). Loaded synchronously (`require`, which loads ES
 * modules too on Node 24), so the adapters keep their synchronous constructors and throw their errors where they did.
 */
import { createRequire } from "node:module";

/**
 * Every package loaded on use. The release bundle (scripts/release/bundle.ts) cannot follow a `require` by name, so
 * it replaces this module with one that requires each of these by its literal name.
 */
export const LOADED_ON_USE = [
  "@aws-sdk/client-s3",
  "@smithy/node-http-handler",
  "@smithy/core/endpoints",
  "@smithy/core/protocols",
  "@smithy/signature-v4",
  "@google-cloud/storage",
  "google-auth-library",
  "age-encryption",
  "ajv",
  "ajv-formats",
  "cron-parser",
] as const;

export type LoadedOnUse = (typeof LOADED_ON_USE)[number];

const load = createRequire(import.meta.url);

/** `() => the package`, loaded once on the first call. Import its types with `import type`. */
export function loadOnUse<T>(specifier: LoadedOnUse): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= load(specifier) as T);
}
