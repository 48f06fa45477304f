/**
 * What a failed request to a cloud object store means, and the one line capsule says about it. Only an adapter knows
 * where its SDK puts the status, the service's code and the socket error, so each reads its errors into a
 * `StoreFailure`; the error classes, codes and wording are decided here once, so the same failure reads the same
 * against S3, Azure and GCS (and callers can test `instanceof NotFoundError` whatever the store).
 */
import { CapsuleError, ErrorCode, NotFoundError, PreconditionFailedError } from "../domain/errors.js";

export type StoreFailure =
  /** No object under the key. */
  | { readonly kind: "missing" }
  /** No bucket (Azure: container) at all. */
  | { readonly kind: "no-bucket"; readonly noun: BucketNoun }
  /** A conditional write lost its race. */
  | { readonly kind: "precondition" }
  /** The store refused these credentials: `reason` is what it said, `check` what to look at. */
  | { readonly kind: "denied"; readonly reason: string | number | undefined; readonly check: string }
  /** The SDK found no credentials to sign with; `detail` says where it looked. */
  | { readonly kind: "no-credentials"; readonly detail: string }
  /** Nothing answered in time, or the connection dropped: `detail` names how. */
  | { readonly kind: "unreachable"; readonly detail: string }
  /** Anything else: `detail` is the service's code and message. */
  | { readonly kind: "error"; readonly detail: string };

export type BucketNoun = "bucket" | "container";

/**
 * The error for `failure` of the request `where` names (the store and the operation). `attempts` (", after 5
 * attempts…") tells a failure that retries did not cure from one that was not retried.
 */
export function storeError(
  where: string,
  failure: StoreFailure,
  cause: unknown,
  attempts = "",
): CapsuleError {
  switch (failure.kind) {
    case "missing":
      return new NotFoundError(`${where}: not found`);
    case "no-bucket":
      return new CapsuleError(ErrorCode.StoreNoSuchBucket, `${where}: ${failure.noun} does not exist`);
    case "precondition":
      return new PreconditionFailedError(`${where}: the object changed since it was read`);
    case "denied":
      return new CapsuleError(
        ErrorCode.StoreAccessDenied,
        `${where}: access denied (${failure.reason}); check ${failure.check}`,
      );
    case "no-credentials":
      return new CapsuleError(ErrorCode.StoreAccessDenied, `${where}: ${failure.detail}`);
    case "unreachable":
      return new CapsuleError(
        ErrorCode.StoreUnreachable,
        `${where}: endpoint unreachable (${failure.detail})${attempts}`,
        { cause },
      );
    case "error":
      return new CapsuleError(ErrorCode.StoreError, `${where}: ${failure.detail}${attempts}`, { cause });
  }
}

/** A download that found another version of the object when it resumed: its bytes would be a splice of two. */
export function changedWhileRead(where: string): PreconditionFailedError {
  return new PreconditionFailedError(`${where}: the object changed while it was read`);
}

/**
 * `request`, for one about the bucket itself (checking it, listing it): "not found" there means the bucket is
 * missing, said without the operation, as `check` says it.
 */
export async function bucketMustExist<T>(
  request: Promise<T>,
  description: string,
  noun: BucketNoun,
): Promise<T> {
  try {
    return await request;
  } catch (error) {
    if (error instanceof NotFoundError) throw storeError(description, { kind: "no-bucket", noun }, error);
    throw error;
  }
}
