/**
 * Every default of a backup plan, in one place (docs/style.md §7), except each engine's own (its CnvrgApp service, port and
 * credentials Secret), which its profile holds (engines/<name>/profile.ts, `profileOf`). The scanner's CnvrgApp
 * defaults are docs/design.md §3's table; the rest are capsule's choices, each with the reason next to it.
 */
import { DEFAULT_FAILED_GRACE_HOURS } from "../storage/retention.js";
import { buildInfo } from "../version.js";
import type {
  BucketSecretRole,
  Deadlines,
  PodSettings,
  Resources,
  StorageCredentialRole,
  StorageType,
} from "./types.js";

/** The image a CronJob runs when the plan names none: the release matching the capsule that compiled it. */
export const DEFAULT_IMAGE = `ghcr.io/cnvrg/capsule:${buildInfo.version}`;

export const DEFAULT_STORAGE_PREFIX = "capsule";

/** docs/design.md §3: a CnvrgApp's backups default to a daily run keeping 5. */
export const DEFAULT_PERIOD = "24h";
export const DEFAULT_KEEP_LAST = 5;
export { DEFAULT_FAILED_GRACE_HOURS };

/**
 * Point-in-time recovery replays WAL from the newest base backup before the target time: a daily base backup bounds
 * a restore's replay to about a day of WAL, and keeps the base backups' cost (a full copy each) to one a day.
 */
export const DEFAULT_BASE_BACKUP_PERIOD = "24h";

/**
 * The cnvrg bucket Secret (`cp-object-storage`) and its keys (docs/design.md §3), per storage type: the cnvrg
 * operator writes every key for every type (empty where unused), so each type names only the keys it reads.
 */
export const DEFAULT_BUCKET_SECRET = "cp-object-storage";
export const BUCKET_SECRET_KEYS: Readonly<
  Record<StorageType, Readonly<Partial<Record<BucketSecretRole, string>>>>
> = {
  s3: { bucket: "CNVRG_STORAGE_BUCKET", endpoint: "CNVRG_STORAGE_ENDPOINT", region: "CNVRG_STORAGE_REGION" },
  // cnvrg keeps CNVRG_STORAGE_BUCKET for every type; Azure's container is its own key.
  azure: {
    bucket: "CNVRG_STORAGE_AZURE_CONTAINER",
    account: "CNVRG_STORAGE_AZURE_ACCOUNT_NAME",
    endpoint: "CNVRG_STORAGE_ENDPOINT",
  },
  gcs: { bucket: "CNVRG_STORAGE_BUCKET" },
};
export const STORAGE_CREDENTIAL_KEYS: Readonly<
  Record<StorageType, Readonly<Partial<Record<StorageCredentialRole, string>>>>
> = {
  s3: { accessKeyId: "CNVRG_STORAGE_ACCESS_KEY", secretAccessKey: "CNVRG_STORAGE_SECRET_KEY" },
  azure: { accountKey: "CNVRG_STORAGE_AZURE_ACCESS_KEY" },
  // The key file lives in a Secret of its own (cnvrg's `gcpSecretRef`), under this key.
  gcs: { keyFile: "key.json" },
};

/** The keys of cnvrg's bucket Secret that are not a plan role: read where the Secret itself is read. */
export const CNVRG_STORAGE_KEYS = {
  type: "CNVRG_STORAGE_TYPE",
  /** gcp: the name of the Secret (same namespace) holding the service-account key file. */
  gcpSecretRef: "CNVRG_STORAGE_GCP_SECRET_REF",
} as const;

/** cnvrg's storage types (`CNVRG_STORAGE_TYPE`, `spec.controlPlane.objectStorage.type`) → capsule's. */
export const STORAGE_TYPE_OF_CNVRG: Readonly<Record<string, StorageType>> = {
  minio: "s3",
  aws: "s3",
  azure: "azure",
  gcp: "gcs",
};

/** cnvrg's own default for `spec.controlPlane.objectStorage` (its operator's appdefaults). */
export const DEFAULT_CNVRG_STORAGE_TYPE = "minio";
export const DEFAULT_GCP_KEY_SECRET = "gcp-storage-secret";

/**
 * 65532 is the distroless "nonroot" user the image runs as. OpenShift's restricted SCC assigns its own UIDs: set
 * these in the plan's `spec.pod` to a value from the namespace's range there.
 */
export const DEFAULT_POD: PodSettings = {
  runAsUser: 65532,
  runAsGroup: 65532,
  fsGroup: 65532,
  imagePullSecrets: [],
};

/**
 * A dump is mostly one core of compression plus a streaming upload: request a quarter core, allow two so the
 * compressor can run beside pg_dump; memory stays flat by design (streams, no temp files), 1 GiB is headroom.
 */
export const DEFAULT_RESOURCES: Resources = {
  requests: { cpu: "250m", memory: "256Mi" },
  limits: { cpu: "2", memory: "1Gi" },
};

/** `/tmp` is the only writable path (read-only root); nothing large belongs there (docs/design.md §8: no temp files). */
export const TMP_SIZE_LIMIT = "256Mi";

export const DEFAULT_DEADLINES: Deadlines = {
  // Ten minutes: a run delayed by a busy scheduler still happens; one delayed past that waits for the next slot.
  startingDeadlineSeconds: 600,
  // Six hours: bounds a hung dump so `Forbid` cannot block every later run forever.
  activeDeadlineSeconds: 21_600,
  // One day: the Job is only a log holder; the statefile in S3 is the record of the run.
  ttlSecondsAfterFinished: 86_400,
  // One retry covers a transient network error; each retry is a new backup id, the failed one stays as failed.
  backoffLimit: 1,
  successfulJobsHistoryLimit: 3,
  failedJobsHistoryLimit: 3,
};
