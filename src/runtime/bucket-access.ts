/**
 * From what a cluster says about a bucket to what `openBucket` (storage/open-store.ts) consumes: a bucket URL, S3
 * settings, and the standard variables of each store's SDK. One place for every caller: the laptop's `--cluster`
 * (cnvrg's bucket Secret, read through the API) and `capsule run` in a CronJob pod or the daemon (the same Secret,
 * reaching the pod's env through secretKeyRefs). Pure: nothing here reads the cluster, the disk or the process env.
 *
 * What the store adapters are handed (their contract; docs/design.md §3):
 * - s3: `s3://BUCKET/PREFIX`, endpoint, region and keys as S3 settings (overrides), as before other types existed.
 * - azure: `azure://CONTAINER/PREFIX` and exactly one credential form: AZURE_STORAGE_CONNECTION_STRING (only when
 *   a Blob endpoint is given: Azurite, Azure Stack), else AZURE_STORAGE_ACCOUNT + AZURE_STORAGE_KEY, else
 *   AZURE_STORAGE_ACCOUNT alone (DefaultAzureCredential: workload identity). The other forms are unset.
 * - gcs: `gs://BUCKET/PREFIX` and GOOGLE_APPLICATION_CREDENTIALS (a mounted key file, in a pod), or
 *   CAPSULE_GCS_CREDENTIALS_JSON (the key file's content, from the laptop or the daemon: never written to disk),
 *   or neither (Application Default Credentials).
 */
import { CapsuleError, ErrorCode } from "../domain/errors.js";
import { registerSecret } from "../redact.js";
import type { S3Overrides } from "../storage/open-store.js";
import {
  BUCKET_SECRET_KEYS,
  CNVRG_STORAGE_KEYS,
  STORAGE_CREDENTIAL_KEYS,
  STORAGE_TYPE_OF_CNVRG,
} from "../plan/defaults.js";
import type { StorageType } from "../plan/types.js";

/** The variables the Azure and GCS adapters read (besides their SDKs' own chains). */
export const ADAPTER_ENV = {
  azureConnectionString: "AZURE_STORAGE_CONNECTION_STRING",
  azureAccount: "AZURE_STORAGE_ACCOUNT",
  azureKey: "AZURE_STORAGE_KEY",
  azureSasToken: "AZURE_STORAGE_SAS_TOKEN",
  gcsKeyFile: "GOOGLE_APPLICATION_CREDENTIALS",
  /** capsule's own: a service-account key file's JSON content, for callers that have the key but no file. */
  gcsKeyJson: "CAPSULE_GCS_CREDENTIALS_JSON",
} as const;

/** Where a bucket is and how to reach it, validated, before any client exists. */
export type BucketSpec =
  | {
      readonly type: "s3";
      readonly bucket: string;
      readonly endpoint?: string;
      readonly region?: string;
      readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
    }
  | {
      readonly type: "azure";
      readonly container: string;
      readonly account: string;
      /** Unset: DefaultAzureCredential. */
      readonly accountKey?: string;
      /** A Blob endpoint that names the account (see `azureEndpoint`). */
      readonly endpoint?: string;
    }
  | {
      readonly type: "gcs";
      readonly bucket: string;
      /** The Secret (same namespace) holding the key file, still to be read; unset: ADC. */
      readonly keySecret?: string;
      readonly keyFile?: string;
      readonly keyJson?: string;
    };

export interface BucketAccess {
  readonly url: string;
  /** S3 settings for `openBucket`; empty for the other types. */
  readonly overrides: S3Overrides;
  /** Variables to set, or to unset (undefined) so that a stray one in the caller's env cannot win. */
  readonly env: Readonly<Record<string, string | undefined>>;
}

/**
 * cnvrg's bucket Secret (`cp-object-storage`, exactly as the cnvrg operator writes it) → the bucket, by
 * CNVRG_STORAGE_TYPE. A missing type is S3-compatible (Secrets older than the key). `where` names the Secret in
 * messages; values never appear in them, except the type's.
 */
export function bucketSpecFromSecret(secret: Readonly<Record<string, string>>, where: string): BucketSpec {
  const type = storageTypeOf(secret[CNVRG_STORAGE_KEYS.type], `Secret ${where}: ${CNVRG_STORAGE_KEYS.type}`);
  const at = `Secret ${where}: `;
  const value = (key: string | undefined) =>
    key === undefined ? undefined : secret[key]?.trim() || undefined;
  const bucketKeys = BUCKET_SECRET_KEYS[type];
  const credentialKeys = STORAGE_CREDENTIAL_KEYS[type];
  switch (type) {
    case "s3": {
      // The Secret's keys by role: bucket, endpoint, region, accessKeyId, secretAccessKey.
      const keys = { ...bucketKeys, ...credentialKeys };
      return s3Spec(
        Object.fromEntries(Object.entries(keys).map(([role, key]) => [role, value(key)])),
        keys,
        at,
      );
    }
    case "azure":
      return azureSpec(
        {
          container: value(bucketKeys.bucket),
          account: value(bucketKeys.account),
          accountKey: value(credentialKeys.accountKey),
          endpoint: value(bucketKeys.endpoint),
        },
        { container: bucketKeys.bucket, account: bucketKeys.account, accountKey: credentialKeys.accountKey },
        at,
      );
    case "gcs": {
      const bucket = required(value(bucketKeys.bucket), bucketKeys.bucket, at);
      const keySecret = value(CNVRG_STORAGE_KEYS.gcpSecretRef);
      return { type, bucket, ...(keySecret && { keySecret }) };
    }
  }
}

/** cnvrg's type word → capsule's storage type; `undefined` (an older Secret) is s3. */
export function storageTypeOf(value: string | undefined, field: string): StorageType {
  const word = value?.trim();
  if (!word) return "s3";
  const type = STORAGE_TYPE_OF_CNVRG[word];
  if (type === undefined || !Object.hasOwn(STORAGE_TYPE_OF_CNVRG, word)) {
    const known = Object.keys(STORAGE_TYPE_OF_CNVRG).join(", ");
    throw new CapsuleError(
      ErrorCode.Config,
      `${field} must be one of ${known} (got ${JSON.stringify(word)})`,
    );
  }
  return type;
}

/** S3 fields, named for messages (Secret keys or variables); a half-given key pair is refused, never guessed at. */
/** Settings as given: each may be unset. */
type Given<Field extends string> = { readonly [F in Field]?: string | undefined };

export function s3Spec(
  fields: Given<"bucket" | "endpoint" | "region" | "accessKeyId" | "secretAccessKey">,
  names: Readonly<Partial<Record<"bucket" | "accessKeyId" | "secretAccessKey", string>>>,
  at: string,
): BucketSpec & { type: "s3" } {
  const bucket = required(fields.bucket, names.bucket, at);
  const credentials = keyPair(fields.accessKeyId, fields.secretAccessKey, names, at);
  return {
    type: "s3",
    bucket,
    ...(fields.endpoint && { endpoint: fields.endpoint }),
    ...(fields.region && { region: fields.region }),
    ...(credentials && { credentials }),
  };
}

/** Both keys or neither (then the AWS chain: IRSA, instance role); one alone is a mistake worth one clear line. */
export function keyPair(
  accessKeyId: string | undefined,
  secretAccessKey: string | undefined,
  names: Readonly<Partial<Record<"accessKeyId" | "secretAccessKey", string>>>,
  at: string,
): { accessKeyId: string; secretAccessKey: string } | undefined {
  if (accessKeyId && secretAccessKey) return { accessKeyId, secretAccessKey };
  if (!accessKeyId && !secretAccessKey) return undefined;
  const [empty, given] = accessKeyId
    ? [names.secretAccessKey, names.accessKeyId]
    : [names.accessKeyId, names.secretAccessKey];
  throw new CapsuleError(
    ErrorCode.Config,
    `${at}${empty} is empty but ${given} is set: give both keys, or neither for ambient credentials (IRSA)`,
  );
}

export function azureSpec(
  fields: Given<"container" | "account" | "accountKey" | "endpoint">,
  names: Readonly<Partial<Record<"container" | "account" | "accountKey", string>>>,
  at: string,
): BucketSpec & { type: "azure" } {
  const container = required(fields.container, names.container, at);
  const account = required(fields.account, names.account, at);
  const endpoint = azureEndpoint(fields.endpoint, account);
  if (endpoint && !fields.accountKey) {
    throw new CapsuleError(
      ErrorCode.Config,
      `${at}${names.accountKey} is empty: the Blob endpoint ${endpoint} needs the account key`,
    );
  }
  return {
    type: "azure",
    container,
    account,
    ...(fields.accountKey && { accountKey: fields.accountKey }),
    ...(endpoint && { endpoint }),
  };
}

/**
 * The cnvrg operator writes CNVRG_STORAGE_ENDPOINT for every storage type, falling back to its MinIO URL, so an
 * endpoint is a Blob endpoint only when it names the account: as the first label of its host
 * (`https://ACCOUNT.blob.core.windows.net`, Azure Stack's `ACCOUNT.blob.<region>.<domain>`) or the first segment of
 * its path (Azurite's `http://127.0.0.1:10000/ACCOUNT`). Anything else is that MinIO fallback, and ignored, as
 * is public Azure's `https://ACCOUNT.blob.core.windows.net` (the adapter's default).
 */
export function azureEndpoint(value: string | undefined, account: string): string | undefined {
  const endpoint = normalizeEndpoint(value);
  if (!endpoint) return undefined;
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return undefined;
  }
  const lower = account.toLowerCase();
  const hostname = url.hostname.toLowerCase();
  // Public Azure's own endpoint is what the adapter uses anyway: no connection string needed (nor a key).
  if (hostname === `${lower}.blob.core.windows.net` && url.pathname.replace(/\/+/g, "") === "")
    return undefined;
  const firstSegment = url.pathname.split("/").filter(Boolean)[0]?.toLowerCase();
  return hostname.split(".")[0] === lower || firstSegment === lower
    ? endpoint.replace(/\/+$/, "")
    : undefined;
}

/**
 * A GCS key file's content, checked to be a JSON object (the Google libraries take nothing else) and registered
 * for redaction whole and by its private key (which appears unescaped once parsed).
 */
export function gcsKeyJson(raw: string, where: string): string {
  registerSecret(raw);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    parsed = undefined;
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new CapsuleError(ErrorCode.Config, `${where} is not a JSON key file`);
  }
  const privateKey = (parsed as { private_key?: unknown }).private_key;
  if (typeof privateKey === "string") registerSecret(privateKey);
  return raw;
}

/** The URL and variables `openBucket` gets for a bucket, under `prefix`. */
export function bucketAccess(spec: BucketSpec, prefix: string): BucketAccess {
  switch (spec.type) {
    case "s3": {
      const endpoint = normalizeEndpoint(spec.endpoint);
      return {
        url: `s3://${spec.bucket}/${prefix}`,
        overrides: {
          ...(endpoint && { endpoint }),
          ...(spec.region && { region: spec.region }),
          ...(spec.credentials && { credentials: spec.credentials }),
        },
        env: {},
      };
    }
    case "azure":
      return { url: `azure://${spec.container}/${prefix}`, overrides: {}, env: azureEnv(spec) };
    case "gcs":
      return {
        url: `gs://${spec.bucket}/${prefix}`,
        overrides: {},
        env: spec.keyJson
          ? { [ADAPTER_ENV.gcsKeyJson]: spec.keyJson, [ADAPTER_ENV.gcsKeyFile]: undefined }
          : spec.keyFile
            ? { [ADAPTER_ENV.gcsKeyFile]: spec.keyFile, [ADAPTER_ENV.gcsKeyJson]: undefined }
            : {},
      };
  }
}

function azureEnv(spec: BucketSpec & { type: "azure" }): Record<string, string | undefined> {
  const none = {
    [ADAPTER_ENV.azureConnectionString]: undefined,
    [ADAPTER_ENV.azureAccount]: undefined,
    [ADAPTER_ENV.azureKey]: undefined,
    [ADAPTER_ENV.azureSasToken]: undefined,
  };
  if (spec.endpoint && spec.accountKey) {
    const protocol = new URL(spec.endpoint).protocol.replace(":", "");
    const connectionString = [
      `DefaultEndpointsProtocol=${protocol}`,
      `AccountName=${spec.account}`,
      `AccountKey=${spec.accountKey}`,
      `BlobEndpoint=${spec.endpoint}`,
    ].join(";");
    registerSecret(connectionString);
    return { ...none, [ADAPTER_ENV.azureConnectionString]: connectionString };
  }
  return {
    ...none,
    [ADAPTER_ENV.azureAccount]: spec.account,
    ...(spec.accountKey && { [ADAPTER_ENV.azureKey]: spec.accountKey }),
  };
}

/** `base` with `changes` applied: a string sets a variable, undefined removes it. */
export function withEnv(
  base: NodeJS.ProcessEnv,
  changes: Readonly<Record<string, string | undefined>>,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  for (const [name, value] of Object.entries(changes)) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
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

function required(value: string | undefined, name: string | undefined, at: string): string {
  if (!value) throw new CapsuleError(ErrorCode.Config, `${at}${name ?? "bucket"} is empty or missing`);
  return value;
}
