/**
 * Reading what a compiled CronJob tells `capsule run` (src/plan/run-contract.ts): the non-secret target as JSON in
 * CAPSULE_TARGET, the bucket and each secret in its own variable. Validated here, once, into types.
 */
import { CapsuleError, ErrorCode } from "../domain/errors.js";
import { RUN_ENV, RUN_TARGET_VERSION, type RunTarget } from "../plan/run-contract.js";
import { BackupStore, type BackupStoreOptions } from "../storage/backup-store.js";
import { checkRecipients, identitiesFromEnv } from "./encryption.js";
import { assertSafeSegment, isEngine } from "../domain/backup.js";
import { openBucket, type S3Overrides } from "../storage/open-store.js";

export function readRunTarget(env: NodeJS.ProcessEnv): RunTarget {
  const raw = env[RUN_ENV.target];
  if (!raw)
    throw new CapsuleError(
      ErrorCode.Config,
      `${RUN_ENV.target} is not set: capsule run reads its target from it`,
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw new CapsuleError(
      ErrorCode.Config,
      `${RUN_ENV.target}: not valid JSON (${(error as Error).message})`,
    );
  }
  const t = parsed as Partial<RunTarget>;
  if (t.version !== RUN_TARGET_VERSION) {
    throw new CapsuleError(
      ErrorCode.Config,
      `${RUN_ENV.target}: /version must be ${RUN_TARGET_VERSION} (got ${JSON.stringify(t.version)}); is the image older than the CronJob?`,
    );
  }
  for (const field of ["cluster", "target"] as const) {
    if (typeof t[field] !== "string") {
      throw new CapsuleError(
        ErrorCode.Config,
        `${RUN_ENV.target}: /${field} must be a string (got ${JSON.stringify(t[field])})`,
      );
    }
    assertSafeSegment(t[field], field);
  }
  if (typeof t.engine !== "string" || !isEngine(t.engine)) {
    throw new CapsuleError(
      ErrorCode.Config,
      `${RUN_ENV.target}: /engine is not a known engine (got ${JSON.stringify(t.engine)})`,
    );
  }
  if (!t.retention || !Number.isInteger(t.retention.keepLast)) {
    throw new CapsuleError(ErrorCode.Config, `${RUN_ENV.target}: /retention/keepLast must be an integer`);
  }
  if (!t.storage || typeof t.storage.prefix !== "string") {
    throw new CapsuleError(ErrorCode.Config, `${RUN_ENV.target}: /storage/prefix must be a string`);
  }
  return t as RunTarget;
}

/** The run's backup store: CAPSULE_BUCKET (a full URL) wins; else CAPSULE_S3_BUCKET with the target's settings. */
export function runStore(target: RunTarget, env: NodeJS.ProcessEnv): BackupStore {
  const url = env["CAPSULE_BUCKET"];
  if (url) {
    const { store, prefix } = openBucket(url, {}, env);
    return new BackupStore(store, prefix, encryptionOptions(target, env));
  }
  const bucket = env[RUN_ENV.bucket];
  if (!bucket) {
    throw new CapsuleError(
      ErrorCode.Config,
      `${RUN_ENV.bucket} is not set: the bucket's Secret has no bucket name`,
    );
  }
  const endpoint = normalizeEndpoint(target.storage.endpoint ?? env[RUN_ENV.endpoint]);
  const overrides: S3Overrides = {
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
  };
  const { store, prefix } = openBucket(`s3://${bucket}/${target.storage.prefix}`, overrides, {
    ...env,
    // An empty value from an optional secretKeyRef means "not set" (cnvrg: empty keys = ambient credentials).
    [RUN_ENV.endpoint]: endpoint,
  });
  return new BackupStore(store, prefix, encryptionOptions(target, env));
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

/**
 * cnvrg's CNVRG_STORAGE_ENDPOINT may carry a scheme or not. Without one, HTTPS is assumed (TLS verified), except
 * on port 80.
 */
export function normalizeEndpoint(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  if (!trimmed) return undefined;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) return trimmed;
  return /:80$/.test(trimmed) ? `http://${trimmed}` : `https://${trimmed}`;
}
