/**
 * Turns a bucket URL (`s3://bucket/prefix`, `azure://container/prefix`, `gs://bucket/prefix` or `file:///dir`) plus
 * settings into an object store and the key prefix under which capsule keeps its backups. S3 settings come from
 * explicit options first, then the standard AWS environment variables; credentials are left to the AWS chain unless
 * given. Azure and GCS settings come from their clouds' standard variables.
 */
import { CapsuleError, ErrorCode } from "../domain/errors.js";
import { redact, registerSecret } from "../redact.js";
import { AzureObjectStore, type AzureCredentials, type AzureStoreConfig } from "./azure-object-store.js";
import { FileObjectStore } from "./file-object-store.js";
import type { ObjectStore } from "./object-store.js";
import { S3ObjectStore, type S3StoreConfig } from "./s3-object-store.js";
import { GcsObjectStore } from "./gcs-object-store.js";
import { gcsSettingsFromEnv } from "./gcs-settings.js";
import { DEFAULT_PREFIX } from "./layout.js";
import { assertSafeSegment } from "../domain/backup.js";
import { milliseconds } from "./env-settings.js";

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
    const prefix = prefixOf(parsed);
    return { store: new S3ObjectStore({ bucket, ...s3SettingsFromEnv(env), ...overrides }), prefix };
  }
  if (parsed.protocol === "gs:") {
    const problem = gcsBucketProblem(parsed.host);
    if (problem) throw invalid(url, `"${parsed.host}" is not a valid GCS bucket name: ${problem}`);
    if (parsed.username || parsed.password) throw invalid(url, "credentials do not belong in the bucket URL");
    if (Object.keys(overrides).length > 0)
      throw invalid(url, "--endpoint, --region and --sse are for s3:// buckets");
    const prefix = prefixOf(parsed);
    return { store: new GcsObjectStore({ bucket: parsed.host, ...gcsSettingsFromEnv(env) }), prefix };
  }
  if (parsed.protocol === "azure:") {
    const container = parsed.host;
    // Azure's rule: 3-63 of lowercase letters, digits and single hyphens, starting and ending with a letter or digit.
    if (!/^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$/.test(container))
      throw invalid(url, `"${container}" is not a valid container name`);
    if (parsed.username || parsed.password || parsed.search) {
      // A SAS token pasted as the URL's query is masked like a password.
      registerSecret(parsed.search.slice(1));
      throw invalid(url, "credentials do not belong in the bucket URL");
    }
    const prefix = prefixOf(parsed);
    return {
      store: new AzureObjectStore({ container, ...azureSettingsFromEnv(url, overrides, env) }),
      prefix,
    };
  }
  throw invalid(url, `unsupported scheme "${parsed.protocol}" (use s3://, azure://, gs:// or file://)`);
}

/**
 * The standard Azure Storage variables, first match wins: a connection string (its BlobEndpoint reaches Azurite
 * and Azure Stack); an account with its key; an account with a SAS token; an account alone, signed in as the pod's
 * workload or managed identity. `--endpoint` overrides the endpoint of the last three.
 */
function azureSettingsFromEnv(
  url: string,
  overrides: S3Overrides,
  env: NodeJS.ProcessEnv,
): Omit<AzureStoreConfig, "container"> {
  const connectionString = env["AZURE_STORAGE_CONNECTION_STRING"] || undefined;
  const account = env["AZURE_STORAGE_ACCOUNT"] || undefined;
  const key = env["AZURE_STORAGE_KEY"] || undefined;
  const sasToken = env["AZURE_STORAGE_SAS_TOKEN"] || undefined;
  registerSecret(connectionString);
  for (const part of connectionString?.split(";") ?? []) {
    if (/^(AccountKey|SharedAccessSignature)=/i.test(part)) registerSecret(part.slice(part.indexOf("=") + 1));
  }
  registerSecret(key);
  registerSecret(sasToken?.replace(/^\?/, ""));
  const unused = (["region", "serverSideEncryption", "forcePathStyle"] as const).filter(
    (f) => overrides[f] !== undefined,
  );
  if (unused.length > 0) throw invalid(url, `${unused.join(", ")}: only for s3:// buckets`);
  if (connectionString && overrides.endpoint) {
    throw invalid(
      url,
      "the endpoint comes from AZURE_STORAGE_CONNECTION_STRING's BlobEndpoint, not --endpoint",
    );
  }
  if (account !== undefined && !/^[a-z0-9]{3,24}$/.test(account)) {
    throw new CapsuleError(
      ErrorCode.Config,
      `AZURE_STORAGE_ACCOUNT must be 3-24 lowercase letters and digits (got ${JSON.stringify(account)})`,
    );
  }
  let credentials: AzureCredentials;
  if (connectionString) credentials = { kind: "connection-string", connectionString };
  else if (account && key) credentials = { kind: "shared-key", account, key };
  else if (account && sasToken) credentials = { kind: "sas", account, sasToken };
  else if (account) credentials = { kind: "identity", account };
  else {
    throw new CapsuleError(
      ErrorCode.Config,
      redact(
        `${url}: no Azure storage account: set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN or a workload/managed identity`,
      ),
    );
  }
  return {
    credentials,
    ...(overrides.endpoint ? { endpoint: overrides.endpoint } : {}),
    ...milliseconds(env, "CAPSULE_AZURE_RETRY_WINDOW_MS", "retryWindowMs"),
    ...milliseconds(env, "CAPSULE_AZURE_REQUEST_TIMEOUT_MS", "requestTimeoutMs"),
  };
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

/** The key prefix a cloud bucket URL's path names, each of its folders checked. */
function prefixOf(url: URL): string {
  const prefix = url.pathname.replace(/^\/+|\/+$/g, "") || DEFAULT_PREFIX;
  for (const segment of prefix.split("/")) assertSafeSegment(segment, "bucket prefix");
  return prefix;
}

function invalid(url: string, why: string): CapsuleError {
  return new CapsuleError(ErrorCode.InvalidBucketUrl, redact(`--bucket ${JSON.stringify(url)}: ${why}`));
}
