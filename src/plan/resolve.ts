/**
 * Plan document → resolved plan: applies the defaults of `defaults.ts`, turns periods into crons, and checks what
 * the schema cannot (rules spanning fields). Pure; problems come back as lines, never thrown one at a time.
 */
import { ENGINE_CONNECTION_FIELDS, type EngineProfile } from "../engines/profile.js";
import { allProfiles, profileOf, walStreamingEngines } from "../engines/registry.js";
import type { RetentionPolicy } from "../storage/retention.js";
import { recipientProblem } from "../storage/age.js";
import {
  BUCKET_SECRET_KEYS,
  DEFAULT_BASE_BACKUP_PERIOD,
  DEFAULT_BUCKET_SECRET,
  DEFAULT_DEADLINES,
  DEFAULT_GCP_KEY_SECRET,
  DEFAULT_FAILED_GRACE_HOURS,
  DEFAULT_IMAGE,
  DEFAULT_KEEP_LAST,
  DEFAULT_PERIOD,
  DEFAULT_POD,
  DEFAULT_RESOURCES,
  DEFAULT_STORAGE_PREFIX,
  STORAGE_CREDENTIAL_KEYS,
} from "./defaults.js";
import type {
  PlanDocument,
  ScheduleDocument,
  SecretRefDocument,
  StorageDocument,
  TargetDocument,
} from "./document.js";
import { problem } from "./plan-error.js";
import { cronProblem, parsePeriod, periodToCron } from "./schedule.js";
import {
  PLAN_API_VERSION,
  PLAN_KIND,
  type BackupPlan,
  type PodSettings,
  type Schedule,
  type Storage,
  type StorageType,
  type Target,
} from "./types.js";

export type Resolved<T> = { ok: true; value: T } | { ok: false; problems: string[] };

/** What a plan falls back to when its document leaves something out: a scanned plan for the same cluster. */
export interface PlanFallback {
  readonly image?: string;
  readonly storage?: Storage;
  readonly pod?: PodSettings;
}

export function resolvePlan(
  document: PlanDocument,
  source: string,
  fallback: PlanFallback = {},
): Resolved<BackupPlan> {
  const problems: string[] = [];
  const report = reporter(problems, source, "/spec/storage");
  const cluster = document.metadata.cluster;
  const spec = document.spec;
  let storage = fallback.storage;
  if (spec.storage) {
    const { bucket, bucketSecretRef, type, account } = spec.storage;
    if (bucket === undefined && bucketSecretRef === undefined)
      report("", "must name a bucket or a bucketSecretRef");
    if (type === "azure" && account === undefined && bucketSecretRef === undefined)
      report("", "must name an account or a bucketSecretRef for azure");
    storage = { prefix: DEFAULT_STORAGE_PREFIX, ...resolveStorage(spec.storage, report) };
  } else if (!storage) {
    report("", `is required: no scanned CnvrgApp provides storage for cluster "${cluster}"`);
  }
  const targets: Target[] = [];
  const seen = new Map<string, number>();
  (spec.targets ?? []).forEach((doc, i) => {
    const pointer = `/spec/targets/${i}`;
    const first = seen.get(doc.name);
    if (first !== undefined) {
      problems.push(problem(source, `${pointer}/name`, `duplicates /spec/targets/${first}/name`, doc.name));
      return;
    }
    seen.set(doc.name, i);
    const target = resolveTarget(doc, cluster, source, pointer, storage?.type);
    if (target.ok) {
      targets.push(target.value);
      switchedStorage(storage, target.value.storage, reporter(problems, source, `${pointer}/storage`));
    } else problems.push(...target.problems);
  });
  if (problems.length > 0 || !storage) return { ok: false, problems };
  return {
    ok: true,
    value: {
      apiVersion: PLAN_API_VERSION,
      kind: PLAN_KIND,
      metadata: { cluster },
      spec: {
        image: spec.image ?? fallback.image ?? DEFAULT_IMAGE,
        storage,
        pod: { ...(fallback.pod ?? DEFAULT_POD), ...spec.pod },
        targets,
      },
    },
  };
}

/** One target, defaults applied. `seed` spreads its schedule: `<cluster>/<name>`. */
export function resolveTarget(
  doc: TargetDocument,
  cluster: string,
  source: string,
  pointer: string,
  planStorageType?: StorageType,
): Resolved<Target> {
  const problems: string[] = [];
  const report = reporter(problems, source, pointer);
  const engine = profileOf(doc.engine);
  const connection = { ...doc.connection, port: doc.connection?.port ?? engine.port };
  checkConnection(engine, connection, report);
  const keys = { ...engine.credentialKeys };
  for (const [role, key] of Object.entries(doc.credentials?.keys ?? {})) {
    if (!(role in engine.credentialKeys))
      report(`/credentials/keys/${role}`, `is not used by ${doc.engine}`, key);
    else keys[role as keyof typeof keys] = key;
  }
  const seed = `${cluster}/${doc.name}`;
  const schedule = checkedSchedule(doc.schedule ?? { period: DEFAULT_PERIOD }, seed, report);
  const verifySchedule =
    doc.verify?.schedule && checkedSchedule(doc.verify.schedule, `${seed}/verify`, report, "/verify");
  const baseBackupSchedule = resolvePitr(doc, seed, report);
  const storage =
    doc.storage &&
    resolveStorage(doc.storage, reporter(problems, source, `${pointer}/storage`), planStorageType);
  if (doc.encryption && doc.verify?.schedule && !doc.encryption.identitySecretRef)
    report("/encryption/identitySecretRef", "is required with a verify schedule: the drill decrypts");
  doc.encryption?.recipients.forEach((recipient, i) => {
    const why = recipientProblem(recipient);
    if (why !== null) report(`/encryption/recipients/${i}`, why, recipient);
  });
  if (problems.length > 0 || !schedule) return { ok: false, problems };
  const retention: RetentionPolicy = {
    keepLast: DEFAULT_KEEP_LAST,
    failedGraceHours: DEFAULT_FAILED_GRACE_HOURS,
    ...doc.retention,
  };
  return {
    ok: true,
    value: {
      name: doc.name,
      engine: doc.engine,
      namespace: doc.namespace,
      connection,
      credentials: { secretName: doc.credentials?.secretName ?? engine.credsSecret, keys },
      schedule,
      retention,
      ...(verifySchedule ? { verify: { schedule: verifySchedule } } : {}),
      ...(baseBackupSchedule && { pitr: true as const, baseBackup: { schedule: baseBackupSchedule } }),
      ...(storage ? { storage } : {}),
      ...(doc.encryption ? { encryption: doc.encryption } : {}),
      resources: {
        requests: { ...DEFAULT_RESOURCES.requests, ...doc.resources?.requests },
        limits: { ...DEFAULT_RESOURCES.limits, ...doc.resources?.limits },
      },
      deadlines: { ...DEFAULT_DEADLINES, ...doc.deadlines },
      suspend: doc.suspend ?? false,
    },
  };
}

/**
 * The base-backup schedule of a target with `pitr: true`, else undefined (problems reported). Seeded apart from the
 * backup schedule so the logical dump and the base backup of one database do not start in the same minute.
 */
function resolvePitr(doc: TargetDocument, seed: string, report: Report): Schedule | undefined {
  if (doc.pitr !== true) {
    if (doc.baseBackup !== undefined) report("/baseBackup", "is only used with pitr: true");
    return undefined;
  }
  if (!profileOf(doc.engine).streamsWal) {
    report("/pitr", `is only for ${walStreamingEngines().join(" or ")}, not ${doc.engine}`, doc.pitr);
    return undefined;
  }
  const schedule = doc.baseBackup?.schedule ?? { period: DEFAULT_BASE_BACKUP_PERIOD };
  return checkedSchedule(schedule, `${seed}/base`, report, "/baseBackup");
}

/** A problem at `path` below the caller's pointer; `value` is shown as JSON (plan-error.ts `problem`). */
type Report = (path: string, message: string, value?: unknown) => void;

function reporter(problems: string[], source: string, pointer: string): Report {
  return (path, message, value) => void problems.push(problem(source, `${pointer}${path}`, message, value));
}

/** The schedule, or undefined with its problem reported (under `at`, where the schedule sits). */
function checkedSchedule(doc: ScheduleDocument, seed: string, report: Report, at = ""): Schedule | undefined {
  const schedule = resolveSchedule(doc, seed);
  if (!("problem" in schedule)) return schedule;
  report(`${at}${schedule.pointer}`, schedule.problem, schedule.value);
  return undefined;
}

type ScheduleProblem = { problem: string; pointer: string; value: string };

export function resolveSchedule(doc: ScheduleDocument, seed: string): Schedule | ScheduleProblem {
  if ("period" in doc) {
    const seconds = parsePeriod(doc.period);
    if (typeof seconds !== "number")
      return { problem: seconds.reason, pointer: "/schedule/period", value: doc.period };
    return { cron: periodToCron(seconds, seed) };
  }
  const reason = cronProblem(doc.cron);
  if (reason) return { problem: reason, pointer: "/schedule/cron", value: doc.cron };
  return { cron: doc.cron.trim().replace(/\s+/g, " ") };
}

function checkConnection(
  engine: EngineProfile,
  connection: TargetDocument["connection"] & object,
  report: Report,
): void {
  for (const field of ENGINE_CONNECTION_FIELDS) {
    if (connection[field] === undefined || engine.connectionFields.includes(field)) continue;
    const takers = allProfiles().filter((p) => p.connectionFields.includes(field));
    report(
      `/connection/${field}`,
      `is only for ${takers.map((p) => p.name).join(" or ")}, not ${engine.name}`,
      connection[field],
    );
  }
  if (!engine.hostInSecret && connection.host === undefined && connection.url === undefined) {
    report("/connection/host", `is required for ${engine.name}`);
  }
}

/** Fields and secret roles that only some storage types read; a plan giving one to another type is wrong. */
const ONLY_FOR: Readonly<Record<string, readonly StorageType[]>> = {
  region: ["s3"],
  pathStyle: ["s3"],
  sse: ["s3"],
  account: ["azure"],
  endpoint: ["s3", "azure"],
};

/**
 * Storage fields given, with the secret key names defaulted for the storage type (the target's own, else the one
 * it inherits from the plan); `prefix` is defaulted by the plan-level caller.
 */
function resolveStorage(
  doc: StorageDocument,
  report: Report,
  inherited: StorageType = "s3",
): Partial<Storage> {
  const type = doc.type ?? inherited;
  if (doc.sse?.kmsKeyId !== undefined && doc.sse.type !== "aws:kms")
    report("/sse/kmsKeyId", 'is only for type "aws:kms"', doc.sse.kmsKeyId);
  for (const [field, types] of Object.entries(ONLY_FOR)) {
    const value = (doc as Record<string, unknown>)[field];
    if (value !== undefined && !types.includes(type))
      report(`/${field}`, `is not used by storage type ${type}`, value);
  }
  const { bucketSecretRef, credentialsSecretRef, ...plain } = doc;
  const keysOf = <Role extends string>(
    ref: SecretRefDocument<Role>,
    defaults: Readonly<Partial<Record<Role, string>>>,
    at: string,
  ): Partial<Record<Role, string>> => {
    for (const [role, key] of Object.entries(ref.keys ?? {}))
      if (!(role in defaults)) report(`/${at}/keys/${role}`, `is not used by storage type ${type}`, key);
    return { ...defaults, ...ref.keys };
  };
  return {
    ...plain,
    ...(bucketSecretRef && {
      bucketSecretRef: {
        secretName: bucketSecretRef.secretName,
        keys: keysOf(bucketSecretRef, BUCKET_SECRET_KEYS[type], "bucketSecretRef"),
      },
    }),
    ...(credentialsSecretRef && {
      credentialsSecretRef: {
        secretName: credentialsSecretRef.secretName,
        keys: keysOf(credentialsSecretRef, STORAGE_CREDENTIAL_KEYS[type], "credentialsSecretRef"),
      },
    }),
  };
}

/**
 * cnvrg's storage: one Secret holds the bucket, its endpoint and region, and the access keys (docs/design.md §3);
 * for gcs the key file is in a Secret of its own (cnvrg's `gcpSecretRef`). `type` is written only when it is not
 * s3, so plans of S3 installations read as they always have.
 */
export function cnvrgStorage(
  bucketSecret: string = DEFAULT_BUCKET_SECRET,
  type: StorageType = "s3",
  gcpKeySecret: string = DEFAULT_GCP_KEY_SECRET,
): StorageDocument {
  return {
    ...(type !== "s3" && { type }),
    bucketSecretRef: { secretName: bucketSecret },
    credentialsSecretRef: { secretName: type === "gcs" ? gcpKeySecret : bucketSecret },
  };
}

/**
 * A target on another storage type than its plan's inherits nothing that names a bucket or credentials: the plan's
 * Secret keys are another type's.
 */
function switchedStorage(plan: Storage | undefined, own: Partial<Storage> | undefined, report: Report): void {
  const planType = plan?.type ?? "s3";
  if (!plan || !own?.type || own.type === planType) return;
  const why = `it is ${own.type}, the plan's storage ${planType}`;
  if (own.bucket === undefined && own.bucketSecretRef === undefined)
    report("", `must name its own bucket or bucketSecretRef: ${why}`);
  if (plan.credentialsSecretRef && !own.credentialsSecretRef)
    report("", `must name its own credentialsSecretRef: ${why}`);
}

/** The storage a target writes to: the plan's, with the target's overrides on top. */
export function storageFor(plan: BackupPlan, target: Target): Storage {
  return { ...plan.spec.storage, ...target.storage };
}
