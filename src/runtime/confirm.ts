import { createInterface } from "node:readline/promises";
import { CapsuleError, ErrorCode } from "../domain/errors.js";

/**
 * Asks before a destructive action. `--yes` skips the question; without a terminal to ask on, the action is refused
 * rather than assumed. An aborted `signal` (SIGINT/SIGTERM inside an interruptible window) withdraws the question,
 * so an interrupted command does not wait for an answer nobody will give.
 */
export async function confirm(
  question: string,
  options: { yes: boolean; stdin: NodeJS.ReadStream; stderr: NodeJS.WriteStream; signal?: AbortSignal },
): Promise<void> {
  if (options.yes) return;
  if (!options.stdin.isTTY) {
    throw new CapsuleError(ErrorCode.Refused, `${question} — refused: no terminal to confirm on; pass --yes`);
  }
  const rl = createInterface({ input: options.stdin, output: options.stderr });
  try {
    const answer = await rl.question(`${question} [y/N] `, options.signal ? { signal: options.signal } : {});
    if (!/^y(es)?$/i.test(answer.trim())) throw new CapsuleError(ErrorCode.Refused, "cancelled");
  } finally {
    rl.close();
  }
}
