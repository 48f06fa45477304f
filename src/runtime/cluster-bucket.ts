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
import { profileOf } from "../engines/profiles.js";
import { DEFAULT_BUCKET_SECRET } from "../plan/defaults.js";
import { normalizeEndpoint } from "./run-target.js";

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
 * The store a CnvrgApp's backups go to, from its bucket Secret; empty keys mean ambient credentials. `overrides`
 * (the operator's --endpoint, --region, --sse) win over the Secret: from a laptop, the Secret's in-cluster endpoint
 * may not even resolve.
 */
export function storeFromBucketSecret(
  secret: Record<string, string>,
  secretName: string,
  env: NodeJS.ProcessEnv,
  options: BackupStoreOptions = {},
  overrides: S3Overrides = {},
): BackupStore {
  const bucket = secret["CNVRG_STORAGE_BUCKET"];
  if (!bucket) throw new CapsuleError(ErrorCode.Config, `Secret ${secretName} has no CNVRG_STORAGE_BUCKET`);
  const endpoint = normalizeEndpoint(secret["CNVRG_STORAGE_ENDPOINT"]);
  const region = secret["CNVRG_STORAGE_REGION"] || undefined;
  const accessKeyId = secret["CNVRG_STORAGE_ACCESS_KEY"];
  const secretAccessKey = secret["CNVRG_STORAGE_SECRET_KEY"];
  const { store, prefix } = openBucket(
    `s3://${bucket}/${DEFAULT_PREFIX}`,
    {
      ...(endpoint ? { endpoint } : {}),
      ...(region ? { region } : {}),
      ...(accessKeyId && secretAccessKey ? { credentials: { accessKeyId, secretAccessKey } } : {}),
      ...overrides,
    },
    env,
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
  const { readSecret } = await import("../k8s/secrets.js");
  const client = new KubeClient(env["KUBECONFIG"] ? { kubeconfig: env["KUBECONFIG"] } : {});
  const app = chooseApp(
    (await listCnvrgAppsVersioned(client)).items,
    engine,
    cluster,
    `kube context ${client.where}`,
  );
  const secret = await readSecret(client, app.namespace, app.bucketSecret);
  return {
    store: storeFromBucketSecret(secret, `${app.namespace}/${app.bucketSecret}`, env, options, overrides),
    cluster: `${app.namespace}.${app.name}`,
  };
}

/** Whether a kube context is there to ask: a KUBECONFIG, ~/.kube/config, or a pod's service account. */
export function hasKubeContext(env: NodeJS.ProcessEnv): boolean {
  if (env["KUBECONFIG"]) return true;
  if (env["KUBERNETES_SERVICE_HOST"]) return true;
  const home = env["HOME"];
  return home !== undefined && existsSync(`${home}/.kube/config`);
}
