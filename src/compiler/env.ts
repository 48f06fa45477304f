/**
 * The container environment of a backup pod, following the run contract (plan/run-contract.ts). Plain values only
 * for what the plan itself says; everything read from a Secret goes through `valueFrom.secretKeyRef`, so no secret
 * value can reach the compiled YAML. The order is fixed, for byte-stable output.
 */
import type { V1EnvVar } from "@kubernetes/client-node";
import { storageFor } from "../plan/resolve.js";
import { AZURE_RUN_ENV, GCS_KEY_VOLUME, GCS_RUN_ENV, RUN_ENV, runTargetOf } from "../plan/run-contract.js";
import type { BackupPlan, Storage, Target } from "../plan/types.js";
import { profileOf } from "../engines/registry.js";
import { canonicalJson } from "./canonical-json.js";

type SecretRef = { secretName: string; keys: Readonly<Partial<Record<string, string>>> };

const plain = (name: string, value: string): V1EnvVar => ({ name, value });

function fromSecret(name: string, ref: SecretRef, role: string, optional = false): V1EnvVar {
  const key = ref.keys[role];
  // Resolution fills every role an engine uses; a missing one here is a bug, not a user error.
  if (key === undefined)
    throw new Error(`secret ${ref.secretName} has no key for role ${role} (env ${name})`);
  return {
    name,
    valueFrom: { secretKeyRef: { name: ref.secretName, key, ...(optional && { optional: true }) } },
  };
}

/** Plain when the plan gives a value, else from the Secret when there is one, else absent. */
function plainOrSecret(
  name: string,
  value: string | undefined,
  ref: SecretRef | undefined,
  role: string,
  optional: boolean,
): V1EnvVar[] {
  if (value !== undefined) return [plain(name, value)];
  if (ref) return [fromSecret(name, ref, role, optional)];
  return [];
}

export function containerEnv(
  plan: BackupPlan,
  target: Target,
  kind: "backup" | "verify" = "backup",
): V1EnvVar[] {
  return [
    plain(RUN_ENV.target, canonicalJson(runTargetOf(plan, target))),
    ...storageEnv(storageFor(plan, target)),
    ...engineEnv(target),
    ...identityEnv(target, kind),
  ];
}

/** Where the bucket is and the credentials to reach it: only what the storage type reads (run-contract.ts). */
function storageEnv(storage: Storage): V1EnvVar[] {
  const bucketRef = storage.bucketSecretRef;
  const credsRef = storage.credentialsSecretRef;
  switch (storage.type ?? "s3") {
    case "s3":
      return [
        ...plainOrSecret(RUN_ENV.bucket, storage.bucket, bucketRef, "bucket", false),
        ...plainOrSecret(RUN_ENV.endpoint, storage.endpoint, bucketRef, "endpoint", true),
        ...plainOrSecret(RUN_ENV.region, storage.region, bucketRef, "region", true),
        // Optional: both keys absent or empty means ambient credentials (IRSA, instance role).
        ...(credsRef
          ? [
              fromSecret(RUN_ENV.accessKeyId, credsRef, "accessKeyId", true),
              fromSecret(RUN_ENV.secretAccessKey, credsRef, "secretAccessKey", true),
            ]
          : []),
      ];
    case "azure":
      return [
        ...plainOrSecret(AZURE_RUN_ENV.container, storage.bucket, bucketRef, "bucket", false),
        ...plainOrSecret(AZURE_RUN_ENV.account, storage.account, bucketRef, "account", false),
        ...plainOrSecret(AZURE_RUN_ENV.endpoint, storage.endpoint, bucketRef, "endpoint", true),
        // Optional: an absent or empty key means DefaultAzureCredential (workload identity).
        ...(credsRef ? [fromSecret(AZURE_RUN_ENV.accountKey, credsRef, "accountKey", true)] : []),
      ];
    case "gcs":
      return [
        ...plainOrSecret(GCS_RUN_ENV.bucket, storage.bucket, bucketRef, "bucket", false),
        // The key file itself is a mounted Secret (cronjob.ts); without one, Application Default Credentials.
        ...(credsRef
          ? [plain(GCS_RUN_ENV.keyFile, `${GCS_KEY_VOLUME.mountPath}/${GCS_KEY_VOLUME.file}`)]
          : []),
      ];
  }
}

/** Least privilege: a backup only encrypts to public keys; only the restore drill needs the key that decrypts. */
function identityEnv(target: Target, kind: "backup" | "verify"): V1EnvVar[] {
  const ref = target.encryption?.identitySecretRef;
  if (kind !== "verify" || !ref) return [];
  return [{ name: RUN_ENV.ageIdentity, valueFrom: { secretKeyRef: { name: ref.secretName, key: ref.key } } }];
}

/** The engine's own variables, as its profile lists them. */
function engineEnv(target: Target): V1EnvVar[] {
  const { connection, credentials } = target;
  return profileOf(target.engine).podEnv.map((v) => {
    if ("secret" in v) return fromSecret(v.name, credentials, v.secret);
    const given = connection[v.field];
    if (given !== undefined) return plain(v.name, String(given));
    if ("orSecret" in v) return fromSecret(v.name, credentials, v.orSecret);
    return plain(v.name, fill(v.fallback ?? "", connection));
  });
}

/** `{field}` → that connection field, unset ones as "" (a profile's fallback such as `http://{host}:{port}`). */
function fill(template: string, connection: Target["connection"]): string {
  return template.replace(/\{(\w+)\}/g, (_, field: string) =>
    String(connection[field as keyof Target["connection"]] ?? ""),
  );
}
