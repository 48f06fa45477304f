/**
 * The hand-written form of a plan, as `schema.ts` accepts it: the resolved types of `types.ts` with the defaulted
 * fields optional and `schedule` given either as a cron or as a `period`. `resolve.ts` turns one into the other.
 */
import type { RetentionPolicy } from "../storage/retention.js";
import type { EngineName } from "../domain/backup.js";
import type {
  BucketSecretRole,
  ClientEncryption,
  Connection,
  CredentialRole,
  Deadlines,
  PLAN_API_VERSION,
  PLAN_KIND,
  PodSettings,
  Storage,
  StorageCredentialRole,
} from "./types.js";

export interface PlanDocument {
  readonly apiVersion: typeof PLAN_API_VERSION;
  readonly kind: typeof PLAN_KIND;
  readonly metadata: { readonly cluster: string };
  readonly spec: {
    readonly image?: string;
    /** Required unless a scanned CnvrgApp provides the cluster's storage. */
    readonly storage?: StorageDocument;
    readonly pod?: Partial<PodSettings>;
    readonly targets?: readonly TargetDocument[];
  };
}

export interface SecretRefDocument<Role extends string> {
  readonly secretName: string;
  readonly keys?: Partial<Record<Role, string>>;
}

/** `Storage` with every field optional and the Secret keys defaulted by role. */
export interface StorageDocument extends Partial<Omit<Storage, "bucketSecretRef" | "credentialsSecretRef">> {
  readonly bucketSecretRef?: SecretRefDocument<BucketSecretRole>;
  readonly credentialsSecretRef?: SecretRefDocument<StorageCredentialRole>;
}

export type ScheduleDocument = { readonly cron: string } | { readonly period: string };

export interface TargetDocument {
  readonly name: string;
  readonly engine: EngineName;
  readonly namespace: string;
  readonly connection?: Partial<Connection>;
  readonly credentials?: SecretRefDocument<CredentialRole>;
  readonly schedule?: ScheduleDocument;
  readonly retention?: Partial<RetentionPolicy>;
  readonly verify?: { readonly schedule?: ScheduleDocument };
  readonly pitr?: boolean;
  /** Only with `pitr: true`. */
  readonly baseBackup?: { readonly schedule?: ScheduleDocument };
  readonly storage?: StorageDocument;
  readonly encryption?: ClientEncryption;
  readonly resources?: {
    readonly requests?: { readonly cpu?: string; readonly memory?: string };
    readonly limits?: { readonly cpu?: string; readonly memory?: string };
  };
  readonly deadlines?: Partial<Deadlines>;
  readonly suspend?: boolean;
}

/** A plan document and where it came from, for error messages. */
export interface SourcedPlanDocument {
  readonly source: string;
  readonly document: PlanDocument;
}
