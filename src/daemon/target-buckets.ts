/**
 * Which bucket each target's backups go to, read the way its pod reads it: from the live backup CronJob's container
 * env — the bucket, endpoint, region and access keys, plain or through secretKeyRefs — resolved like the kubelet
 * resolves them, then opened by the same code `capsule run` uses (runtime/run-target.ts). So the daemon reads
 * exactly where the CronJobs write, for CnvrgApps and hand-written plans alike, and reads no Secret but the ones
 * the storage variables (and a GCS key volume) name (its RBAC grants `get` on those names only: a gcp
 * installation's key Secret, cnvrg's `gcp-storage-secret`, needs `capsule install --secret`). Database credentials
 * are never read.
 */
import type { V1EnvVar } from "@kubernetes/client-node";
import { sha256Hex } from "../compiler/canonical-json.js";
import { ANNOTATIONS, LABELS } from "../compiler/cronjob.js";
import { messageOf } from "../domain/errors.js";
import type { CronJobWithTemplate } from "../k8s/workloads.js";
import { AZURE_RUN_ENV, GCS_KEY_VOLUME, GCS_RUN_ENV, RUN_ENV } from "../plan/run-contract.js";
import { ADAPTER_ENV, gcsKeyJson } from "../runtime/bucket-access.js";
import { readRunTarget, runStore } from "../runtime/run-target.js";
import type { TargetBucket } from "../storage/bucket-set.js";

/** The variables that say where a run's bucket is; nothing else is resolved. */
const STORAGE_ENV: readonly string[] = [
  RUN_ENV.target,
  RUN_ENV.bucket,
  RUN_ENV.endpoint,
  RUN_ENV.region,
  RUN_ENV.accessKeyId,
  RUN_ENV.secretAccessKey,
  ...Object.values(AZURE_RUN_ENV),
  GCS_RUN_ENV.bucket,
];

/** Reads one Secret's decoded data (and registers the values for redaction); rejects when it cannot. */
export type SecretReader = (namespace: string, name: string) => Promise<Record<string, string>>;

export interface ResolvedBuckets {
  readonly buckets: TargetBucket[];
  /** One line per target whose bucket could not be resolved (missing Secret, no RBAC, an API blip…). */
  readonly problems: string[];
  /** Those targets, as `{cluster, target}` where the CronJob says: their last known bucket is kept. */
  readonly unresolved: Array<{ cluster: string; target: string }>;
}

export async function resolveTargetBuckets(
  cronJobs: readonly CronJobWithTemplate[],
  readSecret: SecretReader,
): Promise<ResolvedBuckets> {
  const secrets = new Map<string, Promise<Record<string, string>>>();
  const secret = (namespace: string, name: string) => {
    const key = `${namespace}/${name}`;
    let pending = secrets.get(key);
    if (!pending) secrets.set(key, (pending = readSecret(namespace, name)));
    return pending;
  };
  const buckets: TargetBucket[] = [];
  const problems: string[] = [];
  const unresolved: Array<{ cluster: string; target: string }> = [];
  await Promise.all(
    cronJobs
      .filter((c) => c.metadata.labels?.[LABELS.job] === undefined)
      .map(async (cronJob) => {
        const { namespace, name } = cronJob.metadata;
        const container = cronJob.spec?.jobTemplate.spec?.template.spec?.containers[0];
        try {
          const env = await resolveEnv(namespace, container?.env ?? [], secret);
          const keyJson = await gcsKey(namespace, cronJob, secret);
          if (keyJson !== undefined) env[ADAPTER_ENV.gcsKeyJson] = keyJson;
          const target = readRunTarget(env);
          const cluster = cronJob.metadata.annotations?.[ANNOTATIONS.cluster] ?? target.cluster;
          buckets.push({
            cluster,
            target: target.target,
            key: [
              env[RUN_ENV.bucket] ?? "",
              target.storage.prefix,
              target.storage.endpoint ?? env[RUN_ENV.endpoint] ?? "",
              target.storage.region ?? env[RUN_ENV.region] ?? "",
              env[RUN_ENV.accessKeyId] ?? "",
              // A rotated secret key must open a new client; its digest, never the key, goes into the identity.
              sha256Hex(env[RUN_ENV.secretAccessKey] ?? "").slice(0, 16),
              // The other storage types, only when used, so an S3 target's identity reads as it always has.
              ...(target.storage.type
                ? [
                    target.storage.type,
                    env[AZURE_RUN_ENV.container] ?? env[GCS_RUN_ENV.bucket] ?? "",
                    env[AZURE_RUN_ENV.account] ?? "",
                    env[AZURE_RUN_ENV.endpoint] ?? "",
                    sha256Hex(env[AZURE_RUN_ENV.accountKey] ?? env[ADAPTER_ENV.gcsKeyJson] ?? "").slice(
                      0,
                      16,
                    ),
                  ]
                : []),
            ].join("|"),
            open: () => runStore(target, env),
          });
        } catch (error) {
          problems.push(`CronJob ${namespace}/${name}: ${messageOf(error)}`);
          const cluster = cronJob.metadata.annotations?.[ANNOTATIONS.cluster];
          const target = cronJob.metadata.labels?.[LABELS.target];
          if (cluster && target) unresolved.push({ cluster, target });
        }
      }),
  );
  return { buckets, problems, unresolved };
}

/**
 * A GCS key file reaches the pod as a mounted Secret; the daemon has no such mount, so it reads the key from the
 * volume's Secret and hands the content to the store (never to disk).
 */
async function gcsKey(
  namespace: string,
  cronJob: CronJobWithTemplate,
  secret: (namespace: string, name: string) => Promise<Record<string, string>>,
): Promise<string | undefined> {
  const volume = cronJob.spec?.jobTemplate.spec?.template.spec?.volumes?.find(
    (v) => v.name === GCS_KEY_VOLUME.name,
  )?.secret;
  if (!volume?.secretName) return undefined;
  const key = volume.items?.find((item) => item.path === GCS_KEY_VOLUME.file)?.key ?? GCS_KEY_VOLUME.file;
  const value = (await secret(namespace, volume.secretName))[key];
  if (value === undefined) throw new Error(`Secret ${namespace}/${volume.secretName} has no key ${key}`);
  return gcsKeyJson(value, `Secret ${namespace}/${volume.secretName}: ${key}`);
}

async function resolveEnv(
  namespace: string,
  vars: readonly V1EnvVar[],
  secret: (namespace: string, name: string) => Promise<Record<string, string>>,
): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const v of vars) {
    if (!STORAGE_ENV.includes(v.name)) continue;
    if (v.value !== undefined) env[v.name] = v.value;
    const ref = v.valueFrom?.secretKeyRef;
    if (!ref?.name) continue;
    let data: Record<string, string>;
    try {
      data = await secret(namespace, ref.name);
    } catch (error) {
      if (ref.optional && (error as { status?: number }).status === 404) continue;
      throw error;
    }
    const value = data[ref.key];
    if (value === undefined && !ref.optional)
      throw new Error(`Secret ${namespace}/${ref.name} has no key ${ref.key} (for ${v.name})`);
    if (value !== undefined) env[v.name] = value;
  }
  return env;
}
