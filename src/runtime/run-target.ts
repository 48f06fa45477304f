/**
 * Reading what a compiled CronJob tells `capsule run` (src/plan/run-contract.ts): the non-secret target as JSON in
 * CAPSULE_TARGET, the bucket and each secret in its own variable. Validated here, once, into types.
 */
import { CapsuleError, ErrorCode } from "../domain/errors.js";
import {
  AZURE_RUN_ENV,
  GCS_RUN_ENV,
  RUN_ENV,
  RUN_TARGET_VERSION,
  type RunTarget,
} from "../plan/run-contract.js";
import { BackupStore, type BackupStoreOptions } from "../storage/backup-store.js";
import { checkRecipients, identitiesFromEnv } from "./encryption.js";
import { assertSafeSegment, isEngine } from "../domain/backup.js";
import { openBucket } from "../storage/open-store.js";
import {
  ADAPTER_ENV,
  azureSpec,
  bucketAccess,
  keyPair,
  normalizeEndpoint,
  withEnv,
  type BucketAccess,
} from "./bucket-access.js";

export function readRunTarget(env: NodeJS.ProcessEnv): RunTarget {
  const raw = env[RUN_ENV.target];
  if (!raw) throw bad(" is not set: capsule run reads its target from it");
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw bad(`: not valid JSON (${(error as Error).message})`);
  }
  const t = parsed as Partial<RunTarget>;
  if (t.version !== RUN_TARGET_VERSION) {
    throw bad(
      `: /version must be ${RUN_TARGET_VERSION} (got ${JSON.stringify(t.version)}); is the image older than the CronJob?`,
    );
  }
  for (const field of ["cluster", "target"] as const) {
    if (typeof t[field] !== "string")
      throw bad(`: /${field} must be a string (got ${JSON.stringify(t[field])})`);
    assertSafeSegment(t[field], field);
  }
  if (typeof t.engine !== "string" || !isEngine(t.engine))
    throw bad(`: /engine is not a known engine (got ${JSON.stringify(t.engine)})`);
  if (!t.retention || !Number.isInteger(t.retention.keepLast))
    throw bad(": /retention/keepLast must be an integer");
  if (!t.storage || typeof t.storage.prefix !== "string") throw bad(": /storage/prefix must be a string");
  const type: unknown = t.storage.type;
  if (type !== undefined && type !== "azure" && type !== "gcs") {
    throw bad(
      `: /storage/type must be azure or gcs when set (got ${JSON.stringify(type)}); is the image older than the CronJob?`,
    );
  }
  return t as RunTarget;
}

/**
 * The run's backup store: CAPSULE_BUCKET (a full URL) wins; else the bucket the CronJob's env names for the
 * target's storage type (plan/run-contract.ts).
 */
export function runStore(target: RunTarget, env: NodeJS.ProcessEnv): BackupStore {
  const url = env["CAPSULE_BUCKET"];
  const access: BucketAccess = url ? { url, overrides: {}, env: {} } : runBucketAccess(target, env);
  const { store, prefix } = openBucket(access.url, access.overrides, withEnv(env, access.env));
  return new BackupStore(store, prefix, encryptionOptions(target, env));
}

/**
 * The run contract's variables → the bucket URL and what the store adapter reads (runtime/bucket-access.ts), the
 * same mapping the laptop's `--cluster` applies to the Secret itself. Pure.
 */
export function runBucketAccess(target: RunTarget, env: NodeJS.ProcessEnv): BucketAccess {
  // An empty value from an optional secretKeyRef means "not set" (cnvrg: empty keys = ambient credentials).
  const value = (name: string) => env[name]?.trim() || undefined;
  const { prefix } = target.storage;
  switch (target.storage.type) {
    case undefined:
      return s3RunAccess(target, env);
    case "azure":
      return bucketAccess(
        azureSpec(
          {
            container: value(AZURE_RUN_ENV.container),
            account: value(AZURE_RUN_ENV.account),
            accountKey: value(AZURE_RUN_ENV.accountKey),
            endpoint: target.storage.endpoint ?? value(AZURE_RUN_ENV.endpoint),
          },
          AZURE_RUN_ENV,
          "",
        ),
        prefix,
      );
    case "gcs": {
      const bucket = value(GCS_RUN_ENV.bucket);
      if (!bucket) throw notSet(GCS_RUN_ENV.bucket);
      // The daemon has the key file's content (read from the volume's Secret); a pod has the mounted file.
      const keyJson = value(ADAPTER_ENV.gcsKeyJson);
      const keyFile = value(GCS_RUN_ENV.keyFile);
      return bucketAccess(
        { type: "gcs", bucket, ...(keyJson ? { keyJson } : keyFile ? { keyFile } : {}) },
        prefix,
      );
    }
  }
}

function s3RunAccess(target: RunTarget, env: NodeJS.ProcessEnv): BucketAccess {
  const bucket = env[RUN_ENV.bucket];
  if (!bucket) throw notSet(RUN_ENV.bucket);
  keyPair(env[RUN_ENV.accessKeyId] || undefined, env[RUN_ENV.secretAccessKey] || undefined, RUN_ENV, "");
  const endpoint = normalizeEndpoint(target.storage.endpoint ?? env[RUN_ENV.endpoint]);
  return {
    url: `s3://${bucket}/${target.storage.prefix}`,
    overrides: {
      ...(endpoint ? { endpoint } : {}),
      ...(target.storage.region ? { region: target.storage.region } : {}),
      ...(target.storage.pathStyle !== undefined ? { forcePathStyle: target.storage.pathStyle } : {}),
      ...(target.storage.sse
        ? {
            serverSideEncryption: {
              algorithm: target.storage.sse.type,
              ...(target.storage.sse.kmsKeyId ? { kmsKeyId: target.storage.sse.kmsKeyId } : {}),
            },
          }
        : {}),
    },
    // The normalized endpoint, or none at all: an empty value from an optional secretKeyRef means "not set".
    env: { [RUN_ENV.endpoint]: endpoint },
  };
}

/** A problem with CAPSULE_TARGET itself: `what` follows the variable's name. */
function bad(what: string): CapsuleError {
  return new CapsuleError(ErrorCode.Config, `${RUN_ENV.target}${what}`);
}

function notSet(name: string): CapsuleError {
  return new CapsuleError(ErrorCode.Config, `${name} is not set: the bucket's Secret has no bucket name`);
}

function encryptionOptions(target: RunTarget, env: NodeJS.ProcessEnv): BackupStoreOptions {
  const recipients = target.encryption?.recipients;
  return {
    ...(recipients
      ? { encryptTo: checkRecipients(recipients, `${RUN_ENV.target}: /encryption/recipients`) }
      : {}),
    identities: identitiesFromEnv(env),
  };
}

/** Kept here for callers of the run contract; the rule lives with the other bucket mappings. */
export { normalizeEndpoint };
