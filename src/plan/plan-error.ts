import { CapsuleError, ErrorCode } from "../domain/errors.js";

/**
 * One or more problems in plans, each a line `source: /json/pointer message (got value)` (docs/style.md §6). All problems
 * found are reported together, so a user fixes a file in one round.
 */
export class PlanError extends CapsuleError {
  constructor(readonly problems: readonly string[]) {
    super(ErrorCode.Config, problems.join("\n"));
    this.name = "PlanError";
  }
}

/** One problem line; `value` is shown as JSON, `undefined` omits the "(got …)" part. */
export function problem(source: string, pointer: string, message: string, value?: unknown): string {
  const got = value === undefined ? "" : ` (got ${JSON.stringify(value)})`;
  return `${source}: ${pointer} ${message}${got}`;
}
