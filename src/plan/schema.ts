/**
 * The JSON Schema of a hand-written plan (document.ts), compiled once. It checks shape only — types, names, ranges,
 * unknown fields; what depends on more than one field (a period's syntax, the engine a field belongs to, unique
 * target names) is checked in `resolve.ts` with the same message format.
 */
import { createAjv, type ValidateFunction } from "../util/ajv.js";
import { ENGINES } from "../domain/backup.js";
import { PLAN_API_VERSION, PLAN_KIND } from "./types.js";
import type { PlanDocument } from "./document.js";

const dnsLabel = { type: "string", pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", maxLength: 63 };
/** Secret names are DNS subdomains. */
const dnsSubdomain = { type: "string", pattern: "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", maxLength: 253 };
const secretKey = { type: "string", pattern: "^[-._a-zA-Z0-9]+$", maxLength: 253 };
const quantity = { type: "string", pattern: "^[0-9]+(\\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$" };
const nonEmpty = { type: "string", minLength: 1, pattern: "^\\S+$" };
const count = (minimum: number) => ({ type: "integer", minimum });

const secretRef = (roles: readonly string[]) => ({
  type: "object",
  additionalProperties: false,
  required: ["secretName"],
  properties: {
    secretName: dnsSubdomain,
    keys: {
      type: "object",
      additionalProperties: false,
      properties: Object.fromEntries(roles.map((r) => [r, secretKey])),
    },
  },
});

const schedule = {
  type: "object",
  additionalProperties: false,
  minProperties: 1,
  maxProperties: 1,
  properties: { cron: { type: "string", minLength: 1 }, period: { type: "string", minLength: 1 } },
};

const storage = {
  type: "object",
  additionalProperties: false,
  properties: {
    type: { enum: ["s3", "azure", "gcs"] },
    bucket: { type: "string", pattern: "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$" },
    bucketSecretRef: secretRef(["bucket", "endpoint", "region", "account"]),
    // Azure storage account names: 3-24 lowercase letters and digits.
    account: { type: "string", pattern: "^[a-z0-9]{3,24}$" },
    prefix: { type: "string", pattern: "^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$" },
    endpoint: { type: "string", pattern: "^https?://\\S+$" },
    region: nonEmpty,
    pathStyle: { type: "boolean" },
    credentialsSecretRef: secretRef(["accessKeyId", "secretAccessKey", "accountKey", "keyFile"]),
    sse: {
      type: "object",
      additionalProperties: false,
      required: ["type"],
      properties: { type: { enum: ["AES256", "aws:kms"] }, kmsKeyId: nonEmpty },
    },
  },
};

const target = {
  type: "object",
  additionalProperties: false,
  required: ["name", "engine", "namespace"],
  properties: {
    name: dnsLabel,
    engine: { enum: [...ENGINES] },
    namespace: dnsLabel,
    connection: {
      type: "object",
      additionalProperties: false,
      properties: {
        host: { type: "string", pattern: "^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$", maxLength: 253 },
        port: { type: "integer", minimum: 1, maximum: 65535 },
        database: { type: "string", minLength: 1, maxLength: 63 },
        url: { type: "string", pattern: "^https?://[^\\s@]+$" },
      },
    },
    credentials: secretRef(["host", "database", "user", "password"]),
    schedule,
    retention: {
      type: "object",
      additionalProperties: false,
      properties: {
        keepLast: count(1),
        keepDaily: count(0),
        keepWeekly: count(0),
        keepMonthly: count(0),
        failedGraceHours: count(0),
      },
    },
    verify: { type: "object", additionalProperties: false, properties: { schedule } },
    pitr: { type: "boolean" },
    baseBackup: { type: "object", additionalProperties: false, properties: { schedule } },
    storage,
    encryption: {
      type: "object",
      additionalProperties: false,
      required: ["recipients"],
      properties: {
        recipients: { type: "array", minItems: 1, items: { type: "string", pattern: "^age1[0-9a-z]+$" } },
        identitySecretRef: {
          type: "object",
          additionalProperties: false,
          required: ["secretName", "key"],
          properties: { secretName: dnsSubdomain, key: secretKey },
        },
      },
    },
    resources: {
      type: "object",
      additionalProperties: false,
      properties: {
        requests: {
          type: "object",
          additionalProperties: false,
          properties: { cpu: quantity, memory: quantity },
        },
        limits: {
          type: "object",
          additionalProperties: false,
          properties: { cpu: quantity, memory: quantity },
        },
      },
    },
    deadlines: {
      type: "object",
      additionalProperties: false,
      properties: {
        startingDeadlineSeconds: count(10),
        activeDeadlineSeconds: count(60),
        ttlSecondsAfterFinished: count(0),
        backoffLimit: { type: "integer", minimum: 0, maximum: 10 },
        successfulJobsHistoryLimit: count(0),
        failedJobsHistoryLimit: count(0),
      },
    },
    suspend: { type: "boolean" },
  },
};

export const planSchema = {
  $id: "https://capsule.cnvrg.io/schemas/backupplan-v1.json",
  type: "object",
  additionalProperties: false,
  required: ["apiVersion", "kind", "metadata", "spec"],
  properties: {
    apiVersion: { const: PLAN_API_VERSION },
    kind: { const: PLAN_KIND },
    metadata: {
      type: "object",
      additionalProperties: false,
      required: ["cluster"],
      properties: {
        // A key segment (storage/layout.ts) that, with dots turned into dashes, is also DNS-safe.
        cluster: { type: "string", pattern: "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", maxLength: 200 },
      },
    },
    spec: {
      type: "object",
      additionalProperties: false,
      properties: {
        image: nonEmpty,
        storage,
        pod: {
          type: "object",
          additionalProperties: false,
          properties: {
            runAsUser: count(1),
            runAsGroup: count(0),
            fsGroup: count(0),
            imagePullSecrets: { type: "array", items: dnsSubdomain },
          },
        },
        targets: { type: "array", items: target },
      },
    },
  },
} as const;

let compiled: ValidateFunction | undefined;

/** The compiled validator; compiled on first use, then shared. */
export function planValidator(): ValidateFunction<PlanDocument> {
  compiled ??= createAjv().compile(planSchema);
  return compiled as ValidateFunction<PlanDocument>;
}
