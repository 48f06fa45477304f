/**
 * Reading and writing statefile.json v1 (its shape and rules are domain/statefile.ts): the JSON schema every
 * statefile read is checked against, so a damaged or foreign file is reported, never trusted.
 */
import { CapsuleError, ErrorCode } from "../domain/errors.js";
import { createAjv, formatAjvErrors, type ValidateFunction } from "../util/ajv.js";
import { ENGINES } from "../domain/backup.js";
import { STATEFILE_VERSION, type Statefile } from "../domain/statefile.js";

const isoDate = { type: "string", format: "date-time" } as const;
const LSN_PATTERN = "^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$";

export const statefileSchema = {
  $id: "https://capsule.cnvrg.io/schemas/statefile-v1.json",
  type: "object",
  additionalProperties: true, // newer capsules may add fields; an older reader must still restore
  required: [
    "statefileVersion",
    "backupId",
    "cluster",
    "target",
    "engine",
    "trigger",
    "status",
    "phase",
    "startedAt",
    "heartbeatAt",
    "source",
    "tool",
    "verification",
    "restores",
  ],
  properties: {
    statefileVersion: { const: STATEFILE_VERSION },
    backupId: { type: "string", minLength: 1 },
    cluster: { type: "string", minLength: 1 },
    target: { type: "string", minLength: 1 },
    engine: { enum: [...ENGINES] },
    kind: { enum: ["logical", "physical"] },
    physical: {
      type: "object",
      required: ["systemIdentifier", "timeline", "startLsn", "endLsn", "endTime", "walSegmentSize"],
      properties: {
        systemIdentifier: { type: "string", pattern: "^[0-9]+$" },
        timeline: { type: "integer", minimum: 1 },
        startLsn: { type: "string", pattern: LSN_PATTERN },
        endLsn: { type: "string", pattern: LSN_PATTERN },
        endTime: isoDate,
        walSegmentSize: { type: "integer", minimum: 1048576 },
        manifest: { type: "string" },
      },
    },
    trigger: {
      type: "object",
      required: ["type"],
      properties: {
        type: { enum: ["schedule", "manual", "request"] },
        requestId: { type: "string" },
        requestedBy: { type: "string" },
      },
    },
    status: { enum: ["running", "succeeded", "failed", "deleting"] },
    phase: { type: "string" },
    startedAt: isoDate,
    heartbeatAt: isoDate,
    finishedAt: isoDate,
    source: { type: "object" },
    artifact: {
      type: "object",
      required: ["name", "format", "compression", "encryption", "sizeBytes", "sha256"],
      properties: {
        name: { type: "string", minLength: 1, pattern: "^[^/]+$" },
        format: { type: "string" },
        formatVersion: { type: "string" },
        compression: { enum: ["none", "zstd", "gzip"] },
        encryption: {
          type: "object",
          required: ["type"],
          properties: { type: { enum: ["none", "age"] } },
          // An encrypted artifact without its recipients and plaintext digest could not be checked after decryption.
          if: { properties: { type: { const: "age" } } },
          then: {
            required: ["recipients", "plaintextSha256", "plaintextBytes"],
            properties: {
              recipients: {
                type: "array",
                minItems: 1,
                items: { type: "string", pattern: "^age1[0-9a-z]+$" },
              },
              plaintextSha256: { type: "string", pattern: "^[0-9a-f]{64}$" },
              plaintextBytes: { type: "integer", minimum: 0 },
            },
          },
        },
        sizeBytes: { type: "integer", minimum: 0 },
        sha256: { type: "string", pattern: "^[0-9a-f]{64}$" },
      },
    },
    tool: { type: "object", additionalProperties: { type: "string" } },
    fingerprint: { type: "object" },
    verification: {
      type: "object",
      required: ["status"],
      properties: { status: { enum: ["unverified", "verified", "failed"] }, at: isoDate },
    },
    restores: { type: "array", items: { type: "object", required: ["at", "to", "result"] } },
    error: { type: "object", required: ["phase", "message"] },
  },
  allOf: [
    // A succeeded run without its artifact record could never be restored: reject it as corrupt.
    {
      if: { properties: { status: { const: "succeeded" } } },
      then: { required: ["artifact", "finishedAt"] },
    },
    // A physical backup without its place in the WAL could not be recovered to a point in time. A running one has
    // no place yet (it is begun with its kind so retention keeps its WAL), nor has a run that failed.
    {
      if: {
        properties: { kind: { const: "physical" }, status: { const: "succeeded" } },
        required: ["kind", "status"],
      },
      then: { required: ["physical"] },
    },
  ],
} as const;

/** Compiled on first use (40–70 ms): commands that only write statefiles never pay for it. */
let compiled: ValidateFunction<Statefile> | undefined;
const validator = () => (compiled ??= createAjv().compile<Statefile>(statefileSchema));

/** Parses and validates statefile bytes; throws a `CapsuleError` naming the key and the first problems. */
export function parseStatefile(bytes: Buffer | string, key: string): Statefile {
  let data: unknown;
  try {
    data = JSON.parse(bytes.toString());
  } catch (error) {
    throw new CapsuleError(
      ErrorCode.InvalidStatefile,
      `${key}: not valid JSON (${(error as Error).message})`,
    );
  }
  return checkStatefile(data, key);
}

/** Checks an already parsed statefile (one held in the catalog) against the same schema as one read from its key. */
export function checkStatefile(data: unknown, key: string): Statefile {
  const validate = validator();
  if (!validate(data)) {
    const problems = formatAjvErrors(key, validate.errors, data);
    throw new CapsuleError(ErrorCode.InvalidStatefile, problems.slice(0, 3).join("; "));
  }
  return data;
}

export function serializeStatefile(statefile: Statefile): string {
  return JSON.stringify(statefile, null, 2) + "\n";
}
