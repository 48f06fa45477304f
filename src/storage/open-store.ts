/**
 * Turns a bucket URL (`s3://bucket/prefix`, `gs://bucket/prefix` or `file:///dir`) plus settings into an object store and the key prefix
 * under which capsule keeps its backups. S3 settings come from explicit options first, then the standard AWS
 * environment variables; credentials are left to the AWS chain unless given.
 */
import { CapsuleError, ErrorCode } from "../domain/errors.js";
import { redact, registerSecret } from "../redact.js";
import { FileObjectStore } from "./file-object-store.js";
import type { ObjectStore } from "./object-store.js";
import { S3ObjectStore, type S3StoreConfig } from "./s3-object-store.js";
import { GcsObjectStore } from "./gcs-object-store.js";
import { gcsSettingsFromEnv } from "./gcs-settings.js";
import { DEFAULT_PREFIX } from "./layout.js";
import { assertSafeSegment } from "../domain/backup.js";

export interface BucketLocation {
  readonly store: ObjectStore;
  /** Key prefix under which all clusters live, without a trailing slash. */
  readonly prefix: string;
}

export type S3Overrides = Partial<Omit<S3StoreConfig, "bucket">>;

export function openBucket(
  url: string,
  overrides: S3Overrides = {},
  env: NodeJS.ProcessEnv = process.env,
): BucketLocation {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalid(url, "not a URL");
  }
  if (parsed.protocol === "file:") {
    if (parsed.host) throw invalid(url, "a file URL has no host: write file:///absolute/path");
    const dir = decodeURIComponent(parsed.pathname).replace(/\/+$/, "");
    if (!dir) throw invalid(url, "give a directory");
    return { store: new FileObjectStore(dir), prefix: DEFAULT_PREFIX };
  }
  if (parsed.protocol === "s3:") {
    const bucket = parsed.host;
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket))
      throw invalid(url, `"${bucket}" is not a valid bucket name`);
    if (parsed.username || parsed.password) throw invalid(url, "credentials do not belong in the bucket URL");
    const prefix = parsed.pathname.replace(/^\/+|\/+$/g, "") || DEFAULT_PREFIX;
    for (const segment of prefix.split("/")) assertSafeSegment(segment, "bucket prefix");
    return { store: new S3ObjectStore({ bucket, ...s3SettingsFromEnv(env), ...overrides }), prefix };
  }
  if (parsed.protocol === "gs:") {
    const problem = gcsBucketProblem(parsed.host);
    if (problem) throw invalid(url, `"${parsed.host}" is not a valid GCS bucket name: ${problem}`);
    if (parsed.username || parsed.password) throw invalid(url, "credentials do not belong in the bucket URL");
    if (Object.keys(overrides).length > 0)
      throw invalid(url, "--endpoint, --region and --sse are for s3:// buckets");
    const prefix = parsed.pathname.replace(/^\/+|\/+$/g, "") || DEFAULT_PREFIX;
    for (const segment of prefix.split("/")) assertSafeSegment(segment, "bucket prefix");
    return { store: new GcsObjectStore({ bucket: parsed.host, ...gcsSettingsFromEnv(env) }), prefix };
  }
  throw invalid(url, `unsupported scheme "${parsed.protocol}" (use s3://, gs:// or file://)`);
}

function s3SettingsFromEnv(env: NodeJS.ProcessEnv): Omit<S3StoreConfig, "bucket"> {
  registerSecret(env["AWS_SECRET_ACCESS_KEY"]);
  registerSecret(env["AWS_SESSION_TOKEN"]);
  const endpoint = env["AWS_ENDPOINT_URL_S3"] || env["AWS_ENDPOINT_URL"] || undefined;
  const region = env["AWS_REGION"] || env["AWS_DEFAULT_REGION"] || undefined;
  const pathStyle = env["CAPSULE_S3_PATH_STYLE"];
  const checksum = env["CAPSULE_S3_CHECKSUM"];
  if (checksum !== undefined && checksum !== "when_required" && checksum !== "when_supported") {
    throw new CapsuleError(
      ErrorCode.Config,
      `CAPSULE_S3_CHECKSUM must be when_required or when_supported (got ${JSON.stringify(checksum)})`,
    );
  }
  // Keys from the given environment are passed explicitly so an injected env (tests, the daemon's per-cluster
  // secrets) is honoured; without them the SDK's chain finds profiles, web identity (IRSA) or an instance role.
  const accessKeyId = env["AWS_ACCESS_KEY_ID"];
  const secretAccessKey = env["AWS_SECRET_ACCESS_KEY"];
  const sessionToken = env["AWS_SESSION_TOKEN"];
  return {
    ...(accessKeyId && secretAccessKey
      ? { credentials: { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) } }
      : {}),
    ...(endpoint ? { endpoint } : {}),
    ...(region ? { region } : {}),
    ...(pathStyle ? { forcePathStyle: pathStyle === "true" } : {}),
    ...(checksum ? { checksumMode: checksum } : {}),
    ...(env["CAPSULE_S3_INSECURE_SKIP_TLS_VERIFY"] === "true" ? { insecureSkipTlsVerify: true } : {}),
    ...milliseconds(env, "CAPSULE_S3_RETRY_WINDOW_MS", "retryWindowMs"),
    ...milliseconds(env, "CAPSULE_S3_IDLE_TIMEOUT_MS", "idleTimeoutMs"),
    ...milliseconds(env, "CAPSULE_S3_REQUEST_TIMEOUT_MS", "requestTimeoutMs"),
  };
}

function milliseconds<K extends "retryWindowMs" | "idleTimeoutMs" | "requestTimeoutMs">(
  env: NodeJS.ProcessEnv,
  name: string,
  field: K,
): Partial<Record<K, number>> {
  const value = env[name];
  if (value === undefined || value === "") return {};
  const ms = Number(value);
  if (!Number.isInteger(ms) || ms < 1) {
    throw new CapsuleError(
      ErrorCode.Config,
      `${name} must be a whole number of milliseconds >= 1 (got ${JSON.stringify(value)})`,
    );
  }
  return { [field]: ms } as Partial<Record<K, number>>;
}

/** Why a name is not a GCS bucket name (cloud.google.com/storage/docs/buckets#naming), or undefined. */
function gcsBucketProblem(name: string): string | undefined {
  if (!/^[a-z0-9][a-z0-9._-]*[a-z0-9]$/.test(name))
    return "lowercase letters, digits, '-', '_' and '.', starting and ending with a letter or digit";
  if (name.length < 3 || name.length > 222) return "3 to 63 characters (222 with dots)";
  if (name.split(".").some((part) => part.length === 0 || part.length > 63))
    return "each dot-separated part 1 to 63 characters";
  if (!name.includes(".") && name.length > 63) return "3 to 63 characters (222 with dots)";
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) return "not an IP address";
  if (name.startsWith("goog") || name.includes("google")) return 'no "goog" prefix and no "google"';
  return undefined;
}

function invalid(url: string, why: string): CapsuleError {
  return new CapsuleError(ErrorCode.InvalidBucketUrl, redact(`--bucket ${JSON.stringify(url)}: ${why}`));
}
