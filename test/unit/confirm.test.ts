/**
 * The confirmation prompt on a terminal (runtime/confirm.ts): answered, it resolves or cancels; interrupted (its
 * AbortSignal aborted, as SIGINT/SIGTERM abort an interruptible window), it stops waiting at once and closes the
 * prompt, so an interrupted `--prune` exits instead of waiting for an answer nobody will give.
 */
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { describe, test } from "node:test";
import { confirm } from "../../src/runtime/confirm.js";

/** A stdin that says it is a terminal, and a stderr that keeps what was written. */
function terminal(): { stdin: NodeJS.ReadStream; stderr: NodeJS.WriteStream; asked: () => string } {
  const stdin = Object.assign(new PassThrough(), { isTTY: true }) as unknown as NodeJS.ReadStream;
  const stderr = new PassThrough();
  let written = "";
  stderr.on("data", (c: Buffer) => (written += c.toString()));
  return { stdin, stderr: stderr as unknown as NodeJS.WriteStream, asked: () => written };
}

describe("confirm on a terminal", () => {
  test("GIVEN the question WHEN answered y THEN it resolves; WHEN answered n THEN it is cancelled", async () => {
    const yes = terminal();
    const asking = confirm("Delete 2 backup(s)?", { yes: false, ...yes });
    (yes.stdin as unknown as PassThrough).write("y\n");
    await asking;
    assert.match(yes.asked(), /Delete 2 backup\(s\)\? \[y\/N\]/);
    const no = terminal();
    const refused = confirm("Delete 2 backup(s)?", { yes: false, ...no });
    (no.stdin as unknown as PassThrough).write("n\n");
    await assert.rejects(refused, /cancelled/);
  });

  test(
    "GIVEN the question waiting WHEN its signal is aborted THEN it stops waiting without an answer",
    { timeout: 10_000 },
    async () => {
      const t = terminal();
      const abort = new AbortController();
      const asking = confirm("Delete 2 backup(s)?", { yes: false, ...t, signal: abort.signal });
      abort.abort(new Error("interrupted by SIGTERM"));
      await assert.rejects(asking);
    },
  );
});
