import { CapsuleError, ErrorCode } from "../domain/errors.js";
import { hostProblem } from "../redact.js";
import { BackupStore, type BackupStoreOptions } from "../storage/backup-store.js";
import { openBucket, type S3Overrides } from "../storage/open-store.js";

export interface BucketFlags {
  readonly bucket?: string | undefined;
  readonly endpoint?: string | undefined;
  readonly region?: string | undefined;
  /** S3 server-side encryption for uploads: `AES256` or `aws:kms`. */
  readonly sse?: string | undefined;
  /** The KMS key for `aws:kms`; unset means the bucket's default key. Not a secret. */
  readonly sseKmsKeyId?: string | undefined;
}

/** The backup store named by `--bucket` (or `CAPSULE_BUCKET`), with flag overrides over the AWS environment. */
export function openBackupStore(
  flags: BucketFlags,
  env: NodeJS.ProcessEnv,
  options: BackupStoreOptions = {},
): BackupStore {
  const url = flags.bucket ?? env["CAPSULE_BUCKET"];
  if (!url) {
    throw new CapsuleError(
      ErrorCode.Config,
      "no bucket: pass --bucket s3://bucket/prefix (or file:///dir), or set CAPSULE_BUCKET",
    );
  }
  const overrides = s3OverridesOf(flags);
  if (url.startsWith("file:")) {
    // A file:// bucket has no endpoint, region or server-side encryption: saying so beats ignoring the flag.
    const given = (["endpoint", "region", "sse", "sseKmsKeyId"] as const).filter(
      (f) => flags[f] !== undefined,
    );
    if (given.length > 0) {
      const names = given.map((f) => `--${f.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
      throw new CapsuleError(ErrorCode.Config, `${names.join(", ")}: only for s3:// buckets, not file://`);
    }
  }
  const { store, prefix } = openBucket(url, overrides, env);
  return new BackupStore(store, prefix, options);
}

/** The S3 settings the flags give, over whatever the environment or a cluster's bucket Secret says. */
export function s3OverridesOf(flags: Omit<BucketFlags, "bucket">): S3Overrides {
  if (flags.endpoint && hostProblem(flags.endpoint.replace(/^[a-z][a-z0-9+.-]*:\/\//i, "")) !== undefined) {
    throw new CapsuleError(
      ErrorCode.Config,
      "--endpoint must not carry credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment",
    );
  }
  return {
    ...(flags.endpoint ? { endpoint: flags.endpoint } : {}),
    ...(flags.region ? { region: flags.region } : {}),
    ...serverSideEncryptionOf(flags),
  };
}

function serverSideEncryptionOf(flags: Omit<BucketFlags, "bucket">): S3Overrides {
  if (flags.sseKmsKeyId !== undefined && flags.sse !== "aws:kms") {
    throw new CapsuleError(ErrorCode.Config, "--sse-kms-key-id needs --sse aws:kms");
  }
  if (flags.sse === undefined) return {};
  if (flags.sse !== "AES256" && flags.sse !== "aws:kms") {
    throw new CapsuleError(
      ErrorCode.Config,
      `--sse must be AES256 or aws:kms (got ${JSON.stringify(flags.sse)})`,
    );
  }
  return {
    serverSideEncryption: {
      algorithm: flags.sse,
      ...(flags.sseKmsKeyId ? { kmsKeyId: flags.sseKmsKeyId } : {}),
    },
  };
}

/** `--cluster`, else `CAPSULE_CLUSTER`, else `local`. */
export function clusterFrom(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  return flag ?? env["CAPSULE_CLUSTER"] ?? "local";
}
