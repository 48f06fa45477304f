/**
 * The scanner (docs/design.md §3): CnvrgApp objects → one resolved backup plan per app, cluster id `<namespace>.<name>`.
 * An engine becomes a target only when both `spec.dbs.<db>.enabled` and `spec.dbs.<db>.backup.enabled` are true.
 * The object store's type comes from `spec.controlPlane.objectStorage`, as the cnvrg operator writes the bucket
 * Secret from it (docs/design.md §3).
 * A bad field skips its target (or, for app-level fields, the whole app) with a reason naming the app, the field and
 * the value; every other app and target is still planned. Pure: no I/O, no clock, no randomness.
 */
import { allProfiles, walStreamingEngines } from "../engines/registry.js";
import type { EngineProfile } from "../engines/profile.js";
import {
  DEFAULT_BASE_BACKUP_PERIOD,
  DEFAULT_BUCKET_SECRET,
  DEFAULT_CNVRG_STORAGE_TYPE,
  DEFAULT_GCP_KEY_SECRET,
  DEFAULT_KEEP_LAST,
  DEFAULT_PERIOD,
  STORAGE_TYPE_OF_CNVRG,
} from "../plan/defaults.js";
import type { PlanDocument, TargetDocument } from "../plan/document.js";
import { cnvrgStorage, resolvePlan } from "../plan/resolve.js";
import { PLAN_API_VERSION, PLAN_KIND, type BackupPlan, type StorageType } from "../plan/types.js";
import { FieldReader, type SkippedField } from "./fields.js";

export interface ScanOptions {
  /** The capsule image for every CronJob; @default DEFAULT_IMAGE */
  readonly image?: string;
}

export interface ScanResult {
  readonly plans: BackupPlan[];
  readonly skipped: SkippedField[];
}

/** The longest cluster id capsule accepts (an S3 key segment, storage/layout.ts). */
const MAX_CLUSTER_LENGTH = 200;

export function scan(cnvrgApps: readonly unknown[], options: ScanOptions = {}): ScanResult {
  const plans: BackupPlan[] = [];
  const skipped: SkippedField[] = [];
  for (const app of cnvrgApps) {
    const result = scanApp(app, options);
    skipped.push(...result.skipped);
    if (result.plan) plans.push(result.plan);
  }
  return { plans, skipped };
}

interface ScannedTarget {
  readonly doc: TargetDocument;
  readonly bucketSecret: string;
}

function scanApp(app: unknown, options: ScanOptions): { plan?: BackupPlan; skipped: SkippedField[] } {
  const root = isRecord(app) ? app : {};
  const metadata = isRecord(root["metadata"]) ? root["metadata"] : {};
  const identity = `${printable(metadata["namespace"])}/${printable(metadata["name"])}`;
  const read = new FieldReader(identity);
  const namespace = read.name(metadata, "metadata.namespace", undefined, true);
  const name = read.name(metadata, "metadata.name", undefined);
  if (!namespace || !name) return { skipped: read.problems };
  const cluster = `${namespace}.${name}`;
  if (cluster.length > MAX_CLUSTER_LENGTH) {
    return {
      skipped: [
        {
          app: identity,
          field: "metadata.name",
          value: name,
          reason: `makes the cluster id longer than ${MAX_CLUSTER_LENGTH} characters`,
        },
      ],
    };
  }
  const spec = read.object(root, "spec");
  const dbs = spec && read.object(spec, "spec.dbs");
  const objectStorage = spec && readObjectStorage(spec, read);
  if (!dbs || !objectStorage) return { skipped: read.problems };

  const targets: ScannedTarget[] = [];
  const skipped: SkippedField[] = [...read.problems];
  for (const profile of allProfiles()) {
    const targetRead = new FieldReader(identity, profile.name);
    const target = scanTarget(profile, namespace, dbs, targetRead);
    skipped.push(...targetRead.problems);
    if (target && targetRead.problems.length === 0) targets.push(target);
  }

  const planBucket = targets[0]?.bucketSecret ?? DEFAULT_BUCKET_SECRET;
  const storageOf = (bucketSecret: string) =>
    bucketSecret === DEFAULT_BUCKET_SECRET
      ? cnvrgStorage(bucketSecret, objectStorage.type, objectStorage.gcpKeySecret)
      : // Another Secret is not the one the operator writes from the app's spec: S3-compatible, as always.
        { ...cnvrgStorage(bucketSecret), ...(objectStorage.type !== "s3" && { type: "s3" as const }) };
  const document: PlanDocument = {
    apiVersion: PLAN_API_VERSION,
    kind: PLAN_KIND,
    metadata: { cluster },
    spec: {
      ...(options.image !== undefined && { image: options.image }),
      storage: storageOf(planBucket),
      targets: targets.map((t) =>
        t.bucketSecret === planBucket ? t.doc : { ...t.doc, storage: storageOf(t.bucketSecret) },
      ),
    },
  };
  const resolved = resolvePlan(document, identity);
  if (!resolved.ok) {
    // The fields were checked above, so this is a gap between the scanner's checks and the plan's: say so plainly.
    return {
      skipped: [
        ...skipped,
        { app: identity, field: "spec.dbs", value: undefined, reason: resolved.problems.join("; ") },
      ],
    };
  }
  return { plan: resolved.value, skipped };
}

/**
 * The installation's object store, as the cnvrg operator reads it to write `cp-object-storage` and to mount a gcp
 * key file into its own pods: `spec.controlPlane.objectStorage.type` (default minio) and `gcpSecretRef`. Undefined
 * (and a problem) when a field is unusable: the app is skipped rather than backed up to the wrong store.
 */
function readObjectStorage(
  spec: Record<string, unknown>,
  read: FieldReader,
): { type: StorageType; gcpKeySecret: string } | undefined {
  const controlPlane = read.object(spec, "spec.controlPlane");
  const at = "spec.controlPlane.objectStorage";
  const objectStorage = controlPlane && read.object(controlPlane, at);
  if (!objectStorage) return undefined;
  const word = read.choice(
    objectStorage,
    `${at}.type`,
    Object.keys(STORAGE_TYPE_OF_CNVRG),
    DEFAULT_CNVRG_STORAGE_TYPE,
  );
  const type = word === undefined ? undefined : STORAGE_TYPE_OF_CNVRG[word];
  const gcpKeySecret =
    type === "gcs"
      ? read.name(objectStorage, `${at}.gcpSecretRef`, DEFAULT_GCP_KEY_SECRET)
      : DEFAULT_GCP_KEY_SECRET;
  if (!type || !gcpKeySecret) return undefined;
  return { type, gcpKeySecret };
}

/** The target for one engine, or undefined when it is not backed up (or broken: see `read.problems`). */
function scanTarget(
  profile: EngineProfile,
  namespace: string,
  dbs: Record<string, unknown>,
  read: FieldReader,
): ScannedTarget | undefined {
  const at = `spec.dbs.${profile.cnvrgKey}`;
  const db = read.object(dbs, at);
  if (!db) return undefined;
  // Fields of a database that is not backed up are not read: they cannot break anything.
  if (!read.boolean(db, `${at}.enabled`, false)) return undefined;
  const backup = read.object(db, `${at}.backup`);
  if (!backup || !read.boolean(backup, `${at}.backup.enabled`, false)) return undefined;

  const svcName = read.name(db, `${at}.svcName`, profile.svcName, true);
  const port = read.integer(db, `${at}.port`, profile.port, [1, 65535]);
  const dbCreds = read.name(db, `${at}.credsRef`, profile.credsSecret);
  const creds = read.name(backup, `${at}.backup.credsRef`, dbCreds ?? profile.credsSecret);
  const bucketSecret = read.name(backup, `${at}.backup.bucketRef`, DEFAULT_BUCKET_SECRET);
  const keepLast = read.integer(backup, `${at}.backup.rotation`, DEFAULT_KEEP_LAST, [1, 10_000]);
  const period = read.period(backup, `${at}.backup.period`, DEFAULT_PERIOD);
  const pitr = readPitr(profile, backup, at, read);
  if (!svcName || !port || !creds || !bucketSecret || !keepLast || !period || !pitr) return undefined;

  return {
    bucketSecret,
    doc: {
      name: profile.name,
      engine: profile.name,
      namespace,
      // The CnvrgApp's service and port are the declared source of truth for every engine; the pg Secret's
      // POSTGRES_HOST names the same service in cnvrg installs.
      connection: { host: svcName, port },
      credentials: { secretName: creds },
      schedule: { period },
      retention: { keepLast },
      ...(pitr.on && { pitr: true, baseBackup: { schedule: { period: pitr.basePeriod } } }),
    },
  };
}

/**
 * `spec.dbs.<db>.backup.pitr` and `.baseBackupPeriod`: capsule's additions to the backup block (the cnvrg operator
 * has no field for point-in-time recovery and keeps unknown fields of the block). Undefined when a field is bad.
 */
function readPitr(
  profile: EngineProfile,
  backup: Record<string, unknown>,
  at: string,
  read: FieldReader,
): { on: false } | { on: true; basePeriod: string } | undefined {
  const on = read.boolean(backup, `${at}.backup.pitr`, false);
  if (on === undefined) return undefined;
  if (!on) return { on: false };
  if (!profile.streamsWal) {
    return read.reject(`${at}.backup.pitr`, on, `is only for ${walStreamingEngines().join(" or ")}`);
  }
  const basePeriod = read.period(backup, `${at}.backup.baseBackupPeriod`, DEFAULT_BASE_BACKUP_PERIOD);
  return basePeriod === undefined ? undefined : { on: true, basePeriod };
}

/** A metadata value for messages: strings as they are, anything else as JSON, absent as "?". */
function printable(value: unknown): string {
  if (value === undefined || value === null) return "?";
  return typeof value === "string" ? value : JSON.stringify(value);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
