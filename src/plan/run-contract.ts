/**
 * The contract between a compiled CronJob and `capsule run` inside its pod: which environment variables carry what.
 * The compiler writes them, `capsule run` reads them; both import the names from here. Non-secret settings travel
 * as one JSON document in CAPSULE_TARGET; each secret travels alone, only ever through `secretKeyRef`. The engine's
 * own variables (PGHOST, REDISCLI_AUTH, ES_URL…) are named by its profile (engines/<name>/profile.ts, `podEnv`).
 */
import type { EngineName } from "../domain/backup.js";
import type { RetentionPolicy } from "../storage/retention.js";
import { storageFor } from "./resolve.js";
import type { BackupPlan, Connection, Storage, StorageType, Target, VerifyPolicy } from "./types.js";

export const RUN_ENV = {
  /** JSON of `RunTarget`. */
  target: "CAPSULE_TARGET",
  bucket: "CAPSULE_S3_BUCKET",
  /** Optional; a value may carry a scheme or not (cnvrg's CNVRG_STORAGE_ENDPOINT does either). */
  endpoint: "AWS_ENDPOINT_URL_S3",
  region: "AWS_REGION",
  /** Both empty or unset: ambient credentials (IRSA, instance role). */
  accessKeyId: "AWS_ACCESS_KEY_ID",
  secretAccessKey: "AWS_SECRET_ACCESS_KEY",
  ageIdentity: "CAPSULE_AGE_IDENTITY",
} as const;

/**
 * The run contract's variables for the other storage types (RunTarget `storage.type`). Where a standard variable
 * exists it is used as is (AZURE_STORAGE_ACCOUNT, AZURE_STORAGE_KEY, GOOGLE_APPLICATION_CREDENTIALS); `capsule
 * run` turns them into the bucket URL and the variables the store adapter reads (runtime/bucket-access.ts).
 */
export const AZURE_RUN_ENV = {
  container: "CAPSULE_AZURE_CONTAINER",
  account: "AZURE_STORAGE_ACCOUNT",
  /** Optional; empty or unset: DefaultAzureCredential (workload identity). */
  accountKey: "AZURE_STORAGE_KEY",
  /** Optional; a Blob endpoint (Azurite, Azure Stack), used only when it names the account. */
  endpoint: "CAPSULE_AZURE_ENDPOINT",
} as const;

export const GCS_RUN_ENV = {
  bucket: "CAPSULE_GCS_BUCKET",
  /** Set to the mounted key file when the plan names one; unset: Application Default Credentials. */
  keyFile: "GOOGLE_APPLICATION_CREDENTIALS",
} as const;

/**
 * A GCS key file reaches a pod as a Secret volume, never as an env value (the client libraries read a path):
 * read-only, 0400, one file. The daemon, which has no such mount, reads the volume's Secret instead.
 */
export const GCS_KEY_VOLUME = {
  name: "gcs-key",
  mountPath: "/var/run/secrets/capsule/gcs",
  file: "key.json",
  defaultMode: 0o400,
} as const;

/**
 * Where the age identity (the secret key that opens encrypted backups) comes from: only ever the environment, from
 * a `secretKeyRef` in a CronJob, never a flag. The file form suits a mounted Secret on an operator's machine.
 */
export const AGE_ENV = {
  identity: RUN_ENV.ageIdentity,
  identityFile: "CAPSULE_AGE_IDENTITY_FILE",
} as const;

/**
 * What `capsule run` is told about a request-triggered run (a Job the S3 watcher made from the CronJob): it records
 * `trigger: {type: "request", requestId, requestedBy}` in the statefile, which is how the watcher finds the backup.
 */
export const REQUEST_ENV = {
  trigger: "CAPSULE_TRIGGER",
  requestId: "CAPSULE_REQUEST_ID",
  requestedBy: "CAPSULE_REQUESTED_BY",
} as const;

/**
 * The WAL streamer's liveness (compiler/wal-streamer.ts): `capsule run --stream-wal` touches this file each time
 * round its loop — also while it waits out a store or server outage, which a restart would not cure. The probe fails
 * only when the file exists and is older than `staleSeconds`: a streamer that never touches it is not killed.
 */
export const STREAM_WAL_HEARTBEAT = {
  file: "/tmp/capsule-stream-wal.heartbeat",
  staleSeconds: 120,
  /** Names another file (outside a pod, where /tmp is shared). */
  env: "CAPSULE_STREAM_WAL_HEARTBEAT",
} as const;

/**
 * A pod's `capsule run` arguments: the cluster and target make the Job's purpose visible in `kubectl get pods -o
 * wide` (and must match CAPSULE_TARGET); `extra` selects the work: nothing (a backup), `--verify latest`, or
 * `--restore ID` with its restore flags.
 */
export function runArgs(cluster: string, target: string, extra: readonly string[] = []): string[] {
  return ["run", "--cluster", cluster, "--target", target, ...extra];
}

export const RUN_TARGET_VERSION = 1;

/** What `capsule run` is told about its target, beside the secrets. Never holds a secret value. */
export interface RunTarget {
  readonly version: typeof RUN_TARGET_VERSION;
  readonly cluster: string;
  readonly target: string;
  readonly engine: EngineName;
  readonly namespace: string;
  readonly connection: Connection;
  readonly retention: RetentionPolicy;
  readonly storage: Pick<Storage, "prefix" | "endpoint" | "region" | "pathStyle" | "sse"> & {
    /** Absent means s3, so CronJobs compiled before other types existed read the same. */
    readonly type?: Exclude<StorageType, "s3">;
  };
  readonly verify?: VerifyPolicy;
  /** Public keys only; the identity travels alone in AGE_ENV.identity, and only to the restore drill. */
  readonly encryption?: { readonly recipients: readonly string[] };
}

export function runTargetOf(plan: BackupPlan, target: Target): RunTarget {
  const { type, prefix, endpoint, region, pathStyle, sse } = storageFor(plan, target);
  return {
    version: RUN_TARGET_VERSION,
    cluster: plan.metadata.cluster,
    target: target.name,
    engine: target.engine,
    namespace: target.namespace,
    connection: target.connection,
    retention: target.retention,
    storage: { ...(type && type !== "s3" && { type }), prefix, endpoint, region, pathStyle, sse },
    ...(target.verify && { verify: target.verify }),
    ...(target.encryption && { encryption: { recipients: target.encryption.recipients } }),
  };
}
