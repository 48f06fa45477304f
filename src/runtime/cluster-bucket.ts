/**
 * The cluster-aware CLI (issue 5): with a kube context and no `--bucket`, find the protected installation's
 * CnvrgApp (`--cluster ns.name`, or the only one), read its bucket Secret (cnvrg's `cp-object-storage` keys) and open
 * that bucket — so an operator on a laptop types `capsule pg --list` and sees what the cluster's CronJobs wrote.
 */
import { existsSync } from "node:fs";
import { CapsuleError, ErrorCode } from "../domain/errors.js";
import { BackupStore, type BackupStoreOptions } from "../storage/backup-store.js";
import { DEFAULT_PREFIX } from "../storage/layout.js";
import { type EngineName } from "../domain/backup.js";
import { openBucket, type S3Overrides } from "../storage/open-store.js";
import { profileOf } from "../engines/registry.js";
import {
  BUCKET_SECRET_KEYS,
  CNVRG_STORAGE_KEYS,
  DEFAULT_BUCKET_SECRET,
  STORAGE_CREDENTIAL_KEYS,
} from "../plan/defaults.js";
import { bucketAccess, bucketSpecFromSecret, gcsKeyJson, withEnv, type BucketSpec } from "./bucket-access.js";

interface AppRef {
  readonly namespace: string;
  readonly name: string;
  readonly bucketSecret: string;
}

/** Picks the CnvrgApp: by `ns.name`, or the only one; several without a choice is an error that lists them. */
export function chooseApp(
  apps: readonly unknown[],
  engine: EngineName,
  cluster: string | undefined,
  where: string,
): AppRef {
  const refs = apps.flatMap((app): AppRef[] => {
    const a = app as {
      metadata?: { namespace?: string; name?: string };
      spec?: { dbs?: Record<string, unknown> };
    };
    const namespace = a.metadata?.namespace;
    const name = a.metadata?.name;
    if (!namespace || !name) return [];
    const db = a.spec?.dbs?.[profileOf(engine).cnvrgKey] as { backup?: { bucketRef?: unknown } } | undefined;
    const bucketRef = db?.backup?.bucketRef;
    return [
      {
        namespace,
        name,
        bucketSecret: typeof bucketRef === "string" && bucketRef ? bucketRef : DEFAULT_BUCKET_SECRET,
      },
    ];
  });
  const id = (r: AppRef) => `${r.namespace}.${r.name}`;
  if (cluster) {
    const found = refs.find((r) => id(r) === cluster);
    if (!found) {
      throw new CapsuleError(
        ErrorCode.NotFound,
        `no CnvrgApp ${cluster} in ${where}${refs.length ? ` (there are: ${refs.map(id).join(", ")})` : ""}`,
      );
    }
    return found;
  }
  if (refs.length === 1) return refs[0]!;
  if (refs.length === 0) {
    throw new CapsuleError(ErrorCode.NotFound, `no CnvrgApp in ${where}: pass --bucket s3://bucket/prefix`);
  }
  throw new CapsuleError(
    ErrorCode.Config,
    `${refs.length} CnvrgApps in ${where}: pass --cluster with one of ${refs.map(id).sort().join(", ")}`,
  );
}

/**
 * The store a CnvrgApp's backups go to, from its bucket Secret read by CNVRG_STORAGE_TYPE (runtime/bucket-access.ts);
 * empty keys mean ambient credentials. `overrides` (the operator's --endpoint, --region, --sse) win over the
 * Secret: from a laptop, the Secret's in-cluster endpoint may not even resolve. They are S3 settings, so another
 * type refuses them.
 */
export function storeFromBucketSpec(
  spec: BucketSpec,
  secretName: string,
  env: NodeJS.ProcessEnv,
  options: BackupStoreOptions,
  overrides: S3Overrides,
): BackupStore {
  const given = Object.keys(overrides);
  if (spec.type !== "s3" && given.length > 0) {
    throw new CapsuleError(
      ErrorCode.Config,
      `S3 settings (${given.join(", ")}) do not apply to Secret ${secretName}: its storage type is ${spec.type}`,
    );
  }
  const access = bucketAccess(spec, DEFAULT_PREFIX);
  const { store, prefix } = openBucket(
    access.url,
    { ...access.overrides, ...overrides },
    withEnv(env, access.env),
  );
  return new BackupStore(store, prefix, options);
}

export async function storeFromCluster(
  engine: EngineName,
  cluster: string | undefined,
  env: NodeJS.ProcessEnv,
  options: BackupStoreOptions = {},
  overrides: S3Overrides = {},
): Promise<{ store: BackupStore; cluster: string }> {
  // Loaded only here: the Kubernetes client is the slowest import in capsule.
  const { KubeClient } = await import("../k8s/kube-client.js");
  const { listCnvrgAppsVersioned } = await import("../k8s/cnvrgapps.js");
  const { readSecret, readSecretKey } = await import("../k8s/secrets.js");
  const client = new KubeClient(env["KUBECONFIG"] ? { kubeconfig: env["KUBECONFIG"] } : {});
  const app = chooseApp(
    (await listCnvrgAppsVersioned(client)).items,
    engine,
    cluster,
    `kube context ${client.where}`,
  );
  const where = `${app.namespace}/${app.bucketSecret}`;
  const spec = bucketSpecFromSecret(
    await readSecret(client, app.namespace, app.bucketSecret, NOT_SECRET_KEYS),
    where,
  );
  // gcp: the key file stays in memory, handed to the adapter as content (CAPSULE_GCS_CREDENTIALS_JSON), never a file.
  const keyFile = STORAGE_CREDENTIAL_KEYS.gcs.keyFile ?? "key.json";
  const withKey =
    spec.type === "gcs" && spec.keySecret
      ? {
          ...spec,
          keyJson: gcsKeyJson(
            await readSecretKey(client, app.namespace, spec.keySecret, keyFile),
            `Secret ${app.namespace}/${spec.keySecret}: ${keyFile}`,
          ),
        }
      : spec;
  return {
    store: storeFromBucketSpec(withKey, where, env, options, overrides),
    cluster: `${app.namespace}.${app.name}`,
  };
}

/**
 * The keys of cnvrg's bucket Secret that name things rather than grant access: not registered for redaction, so a
 * message can say which type or bucket it is about.
 */
const NOT_SECRET_KEYS: ReadonlySet<string> = new Set([
  CNVRG_STORAGE_KEYS.type,
  CNVRG_STORAGE_KEYS.gcpSecretRef,
  ...Object.values(BUCKET_SECRET_KEYS).flatMap((keys) => Object.values(keys)),
]);

/** Whether a kube context is there to ask: a KUBECONFIG, ~/.kube/config, or a pod's service account. */
export function hasKubeContext(env: NodeJS.ProcessEnv): boolean {
  if (env["KUBECONFIG"]) return true;
  if (env["KUBERNETES_SERVICE_HOST"]) return true;
  const home = env["HOME"];
  return home !== undefined && existsSync(`${home}/.kube/config`);
}
