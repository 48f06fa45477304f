/**
 * The three kinds of failure (docs/style.md §5):
 * - the user's mistake: a clipanion `UsageError` (message + usage), thrown from commands;
 * - an expected operational failure: a `CapsuleError` with a stable code, printed as one line without a stack;
 * - a bug: anything else, printed with its stack.
 */

/** Stable error codes. Never renumber or reuse one: scripts and alerts match on them. */
export const ErrorCode = {
  Config: "CAPSULE_CONFIG",
  InvalidBucketUrl: "CAPSULE_INVALID_BUCKET_URL",
  StoreUnreachable: "CAPSULE_STORE_UNREACHABLE",
  StoreAccessDenied: "CAPSULE_STORE_ACCESS_DENIED",
  StoreNoSuchBucket: "CAPSULE_STORE_NO_SUCH_BUCKET",
  StoreError: "CAPSULE_STORE_ERROR",
  NotFound: "CAPSULE_NOT_FOUND",
  PreconditionFailed: "CAPSULE_PRECONDITION_FAILED",
  InvalidStatefile: "CAPSULE_INVALID_STATEFILE",
  NotRestorable: "CAPSULE_NOT_RESTORABLE",
  ChecksumMismatch: "CAPSULE_CHECKSUM_MISMATCH",
  FingerprintMismatch: "CAPSULE_FINGERPRINT_MISMATCH",
  ToolMissing: "CAPSULE_TOOL_MISSING",
  ToolFailed: "CAPSULE_TOOL_FAILED",
  DatabaseError: "CAPSULE_DATABASE_ERROR",
  Refused: "CAPSULE_REFUSED",
  NotImplemented: "CAPSULE_NOT_IMPLEMENTED",
  KubeApi: "CAPSULE_KUBE_API",
  /** An `--in-cluster` Job could not run (its pod never started, or it vanished). */
  JobFailed: "CAPSULE_JOB_FAILED",
  /** SIGINT/SIGTERM stopped a restore or drill; the message says what state the target is in. */
  Interrupted: "CAPSULE_INTERRUPTED",
  /** The command line itself is wrong (a flag, its value, or a flag the chosen action does not take); exit 2. */
  Usage: "CAPSULE_USAGE",
  /** A local file or directory capsule was told to use cannot be used (`--to`, a CA file, …). */
  LocalFile: "CAPSULE_LOCAL_FILE",
  /** The PostgreSQL server refuses WAL streaming until it is configured for it (role, wal senders, pg_hba). */
  ReplicationNotSetUp: "CAPSULE_REPLICATION_NOT_SET_UP",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class CapsuleError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "CapsuleError";
  }
}

export class NotFoundError extends CapsuleError {
  constructor(message: string) {
    super(ErrorCode.NotFound, message);
    this.name = "NotFoundError";
  }
}

/** A conditional write lost its race: someone else changed the object since we read it. */
export class PreconditionFailedError extends CapsuleError {
  constructor(message: string) {
    super(ErrorCode.PreconditionFailed, message);
    this.name = "PreconditionFailedError";
  }
}

/** The message of any thrown value, for places that must turn an unknown into one line. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/**
 * A bad value of one named field (a connection's `port`, a restore's `toDatabase`). Engines name fields, never the
 * flags or variables a surface fills them from: the message template writes a field as `{field}`, and each surface
 * renders it its own way (the CLI as `--field`, `capsule run` as a path in CAPSULE_TARGET). Its plain message uses
 * the field names as they are.
 */
export class FieldError extends CapsuleError {
  constructor(
    code: ErrorCode,
    readonly field: string,
    readonly template: string,
  ) {
    super(
      code,
      renderFields(template, (name) => name),
    );
    this.name = "FieldError";
  }

  /** The message with each `{field}` written as `name(field)`. */
  render(name: (field: string) => string): string {
    return renderFields(this.template, name);
  }
}

function renderFields(template: string, name: (field: string) => string): string {
  return template.replace(/\{([A-Za-z][A-Za-z0-9]*)\}/g, (_, field: string) => name(field));
}
