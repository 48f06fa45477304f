/**
 * SIGINT and SIGTERM during work that must not be cut short: a restore, a restore drill. The signal does not kill
 * the process; it aborts the work's AbortSignal, the work stops its tools, puts the target back (or leaves it
 * untouched) and removes what it created, and only then does the process exit — 130 for SIGINT, 143 for SIGTERM, as
 * a shell reports them — with one line that says what state the target is in (docs/adr/0015).
 *
 * A second signal while cleaning up does not abandon the cleanup (half a cleanup is worse than a slow one); it says
 * so, and SIGKILL remains the operator's way out. What a SIGKILL leaves behind is found by the next run.
 */
import { CapsuleError, ErrorCode, messageOf } from "../domain/errors.js";

export type InterruptSignal = "SIGINT" | "SIGTERM";

/** The work was interrupted by a signal; its message says what state the target was left in. */
export class InterruptedError extends CapsuleError {
  constructor(
    readonly signal: InterruptSignal,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(ErrorCode.Interrupted, message, options);
    this.name = "InterruptedError";
  }

  /** The exit status a shell gives a process killed by this signal (128 + signal number). */
  get exitCode(): number {
    return this.signal === "SIGINT" ? 130 : 143;
  }
}

/** The signal that aborted `signal`, if it was an interruption. */
export function interruptionOf(signal: AbortSignal | undefined): InterruptedError | undefined {
  return signal?.aborted && signal.reason instanceof InterruptedError ? signal.reason : undefined;
}

/** Throws the interruption if `signal` was aborted by one: a check between steps that must not start late. */
export function throwIfInterrupted(signal: AbortSignal | undefined): void {
  const interruption = interruptionOf(signal);
  if (interruption) throw interruption;
}

/**
 * Runs `work` with an AbortSignal that SIGINT/SIGTERM abort. When the work settles after an interruption, the
 * result is an InterruptedError: the work's own one (which says what state it left) if it threw one, else one
 * built from `describe(error)`. `notice` is told about a second signal during cleanup.
 */
export async function interruptible<T>(
  work: (signal: AbortSignal) => Promise<T>,
  options: {
    /** One line for an interruption the work did not describe itself. */
    describe?: (signal: InterruptSignal, cause: unknown) => string;
    notice?: (line: string) => void;
  } = {},
): Promise<T> {
  const abort = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (abort.signal.aborted) {
      options.notice?.(`${signal} again: still cleaning up so nothing is left half done (SIGKILL to force)`);
      return;
    }
    const name: InterruptSignal = signal === "SIGINT" ? "SIGINT" : "SIGTERM";
    abort.abort(new InterruptedError(name, `interrupted by ${name}`));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    return await work(abort.signal);
  } catch (error) {
    const interruption = interruptionOf(abort.signal);
    if (!interruption || error instanceof InterruptedError) throw error;
    throw new InterruptedError(
      interruption.signal,
      options.describe?.(interruption.signal, error) ??
        `interrupted by ${interruption.signal}: ${messageOf(error)}`,
      { cause: error },
    );
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
