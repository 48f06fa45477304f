/**
 * The backup plan (docs/design.md §4), in its resolved form: every default applied, every `period` turned into a cron.
 * This is what the scanner returns, what `-o json` prints and what the compiler reads. A resolved plan is also a
 * valid hand-written plan, so `capsule plan -o json` output can be edited and fed back through `--plans`.
 * The defaults themselves live in `defaults.ts`; the `@default` tags below name them.
 */
import type { RetentionPolicy } from "../storage/retention.js";
import type { EngineName } from "../domain/backup.js";
import type { TargetConnection } from "../domain/connection.js";
import type { CredentialRole } from "../engines/profile.js";

export const PLAN_API_VERSION = "capsule.cnvrg.io/v1";
export const PLAN_KIND = "BackupPlan";

export interface BackupPlan {
  readonly apiVersion: typeof PLAN_API_VERSION;
  readonly kind: typeof PLAN_KIND;
  readonly metadata: PlanMetadata;
  readonly spec: PlanSpec;
}

export interface PlanMetadata {
  /** The protected installation; `<namespace>.<name>` for a scanned CnvrgApp. Safe for S3 keys. */
  readonly cluster: string;
}

export interface PlanSpec {
  /** The capsule image every CronJob runs. @default DEFAULT_IMAGE */
  readonly image: string;
  readonly storage: Storage;
  /** Pod-level settings shared by every target of the plan. */
  readonly pod: PodSettings;
  readonly targets: readonly Target[];
}

/** A Secret in the target's namespace and which of its keys holds which value. */
export interface SecretKeys<Role extends string> {
  readonly secretName: string;
  /** Every role the storage type uses, defaulted (resolve.ts); roles of other types are absent. */
  readonly keys: Readonly<Partial<Record<Role, string>>>;
}

/**
 * Which object store a plan's backups go to: `s3` (AWS and S3-compatible: MinIO, radosgw), `azure` (Blob Storage:
 * the bucket is a container) or `gcs` (Google Cloud Storage). cnvrg's `CNVRG_STORAGE_TYPE` maps minio and aws to s3,
 * gcp to gcs (`STORAGE_TYPE_OF_CNVRG` in defaults.ts).
 */
export type StorageType = "s3" | "azure" | "gcs";

/** `account` is Azure's only; each type uses the roles `STORAGE_ROLES` in defaults.ts lists for it. */
export type BucketSecretRole = "bucket" | "endpoint" | "region" | "account";
/** S3: an access key pair; Azure: the account key; GCS: a service-account key file (JSON), mounted as a file. */
export type StorageCredentialRole = "accessKeyId" | "secretAccessKey" | "accountKey" | "keyFile";

export interface Storage {
  /** @default "s3" (omitted from a resolved plan when s3, so older plans and their CronJobs stay as they were) */
  readonly type?: StorageType;
  /** The bucket (Azure: the container) by name. Either this or `bucketSecretRef` (whose `bucket` key names it). */
  readonly bucket?: string;
  /** A Secret holding bucket, endpoint and region (cnvrg's `cp-object-storage`). Plain fields win over it. */
  readonly bucketSecretRef?: SecretKeys<BucketSecretRole>;
  /** Azure only: the storage account. Unset means the bucket Secret's `account` key. */
  readonly account?: string;
  /** Key prefix inside the bucket. @default "capsule" */
  readonly prefix: string;
  /**
   * S3 endpoint URL for S3-compatible stores (MinIO, radosgw); unset means AWS or the secret's endpoint. Azure: a
   * Blob endpoint (Azurite, Azure Stack), used only when it names the account (`runtime/bucket-access.ts`).
   */
  readonly endpoint?: string;
  readonly region?: string;
  /** Path-style addressing; unset lets `capsule run` decide (path style when a custom endpoint is used). */
  readonly pathStyle?: boolean;
  /**
   * Access keys; unset, or empty values in the Secret, mean ambient credentials (IRSA, instance role; Azure's
   * DefaultAzureCredential). GCS: the Secret holding the service-account key file, mounted read-only; unset means
   * Application Default Credentials (workload identity).
   */
  readonly credentialsSecretRef?: SecretKeys<StorageCredentialRole>;
  /** Server-side encryption requested on every upload. */
  readonly sse?: ServerSideEncryption;
}

export interface ServerSideEncryption {
  readonly type: "AES256" | "aws:kms";
  /** KMS key id or ARN, only with `aws:kms`. Not a secret. */
  readonly kmsKeyId?: string;
}

export interface PodSettings {
  /** @default 65532 (the distroless "nonroot" user) */
  readonly runAsUser: number;
  /** @default 65532 */
  readonly runAsGroup: number;
  /** @default 65532 */
  readonly fsGroup: number;
  /** Names of image pull Secrets in each target's namespace. @default [] */
  readonly imagePullSecrets: readonly string[];
}

/** Which Secret key holds which credential; each engine's profile says which roles it uses. */
export type { CredentialRole };

export interface Target {
  /** Unique within the cluster; a DNS label. Scanned targets are named after their engine. */
  readonly name: string;
  readonly engine: EngineName;
  /** Where the CronJob runs; the credentials Secrets must live here too. */
  readonly namespace: string;
  readonly connection: Connection;
  /** Engine credentials: exactly the roles the engine uses, keys defaulted per engine (`defaults.ts`). */
  readonly credentials: {
    readonly secretName: string;
    readonly keys: Readonly<Partial<Record<CredentialRole, string>>>;
  };
  readonly schedule: Schedule;
  readonly retention: RetentionPolicy;
  /** With a schedule, a second CronJob runs the restore drill (`capsule run --verify latest`). */
  readonly verify?: VerifyPolicy;
  /**
   * Point-in-time recovery (PostgreSQL only, docs/adr/0021): a one-replica Deployment streams the WAL into the
   * bucket and a second CronJob takes physical base backups (`baseBackup`). Absent when off.
   */
  readonly pitr?: true;
  /** Present exactly when `pitr` is: when the physical base backups run. */
  readonly baseBackup?: BaseBackupPolicy;
  /** Overrides of the plan's storage for this target only (a CnvrgApp may name a bucket per database). */
  readonly storage?: Partial<Storage>;
  /** Client-side encryption of this target's artifacts (docs/adr/0011); unset means stored as the engine wrote them. */
  readonly encryption?: ClientEncryption;
  readonly resources: Resources;
  readonly deadlines: Deadlines;
  /** Keeps the CronJob but stops it firing. @default false */
  readonly suspend: boolean;
}

export interface ClientEncryption {
  /** Age recipients (public keys, `age1…`): every artifact is encrypted to all of them. Not secrets. */
  readonly recipients: readonly string[];
  /**
   * The Secret key holding an age identity that opens the backups, for the scheduled restore drill only: backup
   * CronJobs never receive it.
   */
  readonly identitySecretRef?: { readonly secretName: string; readonly key: string };
}

/** A target's connection: the shape the engines read (domain/connection.ts). */
export type Connection = TargetConnection;

/** Always a cron in resolved form (5 fields or an @-macro, evaluated in Etc/UTC). */
export interface Schedule {
  readonly cron: string;
}

export interface BaseBackupPolicy {
  /** @default a daily period (DEFAULT_BASE_BACKUP_PERIOD), spread like the backup schedule */
  readonly schedule: Schedule;
}

export interface VerifyPolicy {
  readonly schedule?: Schedule;
}

export interface Resources {
  readonly requests: { readonly cpu: string; readonly memory: string };
  readonly limits: { readonly cpu?: string; readonly memory: string };
}

export interface Deadlines {
  /** A run that could not start this long after its time is skipped (and counted as missed). @default 600 */
  readonly startingDeadlineSeconds: number;
  /** The whole Job, retries included, is killed after this. @default 21600 (6 h) */
  readonly activeDeadlineSeconds: number;
  /** Finished Jobs are garbage-collected after this; the statefile in S3 is the lasting record. @default 86400 */
  readonly ttlSecondsAfterFinished: number;
  /** Retries of a failed pod within one Job. @default 1 */
  readonly backoffLimit: number;
  /** @default 3 */
  readonly successfulJobsHistoryLimit: number;
  /** @default 3 */
  readonly failedJobsHistoryLimit: number;
}
