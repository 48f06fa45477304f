/** What every engine's restore checks before it touches its target. */
import type { ArtifactSource } from "../domain/artifact.js";
import { CapsuleError, ErrorCode } from "../domain/errors.js";
import type { Artifact } from "../domain/statefile.js";
import { InterruptedError, interruptionOf } from "../util/interruption.js";

/** The backup's artifact; a backup without one (a failed run's) is not restorable. */
export function artifactOf(source: ArtifactSource): Artifact {
  const artifact = source.statefile.artifact;
  if (!artifact) {
    throw new CapsuleError(
      ErrorCode.NotRestorable,
      `${source.backupId} has no artifact (state: ${source.statefile.status})`,
    );
  }
  return artifact;
}

/**
 * When `signal` was aborted by SIGINT/SIGTERM: the InterruptedError `interrupted by SIG…` + `state` (what the run
 * left), with `cause` behind it; otherwise undefined.
 */
export function interruptedWith(
  signal: AbortSignal | undefined,
  state: string,
  cause?: unknown,
): InterruptedError | undefined {
  const interruption = interruptionOf(signal);
  if (!interruption) return undefined;
  const message = `interrupted by ${interruption.signal}${state}`;
  return new InterruptedError(interruption.signal, message, cause === undefined ? undefined : { cause });
}

/** Restored data that differs from the backup's fingerprint: the first five differences, and how many more. */
export function mismatchError(where: string, differences: readonly string[]): CapsuleError {
  const more = differences.length > 5 ? ` (+${differences.length - 5} more)` : "";
  return new CapsuleError(
    ErrorCode.FingerprintMismatch,
    `${where}: restored data does not match the backup: ${differences.slice(0, 5).join("; ")}${more}`,
  );
}

/** Before the target is touched, an interruption leaves nothing to put back: it says so. */
export function throwIfUntouched(signal: AbortSignal | undefined, where: string): void {
  const interruption = interruptedWith(signal, ` before ${where} was touched: it is unchanged`);
  if (interruption) throw interruption;
}
