/**
 * `RepeatingTask.trigger`: the reconcile loop's "a CnvrgApp changed, pass again soon" on the shared timer. An hour
 * interval stands for "not by itself": every round after the first here can only come from a trigger.
 */
import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";
import { RepeatingTask } from "../../src/util/repeating-task.js";

const HOUR = 3_600_000;

/** A promise and the function that settles it. */
function signal(): { promise: Promise<void>; settle: () => void } {
  let settle!: () => void;
  const promise = new Promise<void>((resolve) => (settle = resolve));
  return { promise, settle };
}

describe("RepeatingTask.trigger", () => {
  const tasks: RepeatingTask[] = [];
  afterEach(async () => {
    await Promise.all(tasks.splice(0).map((t) => t.stop()));
  });

  test("GIVEN a task waiting out its interval WHEN triggered THEN the next round runs without waiting", async () => {
    const rounds: ReturnType<typeof signal>[] = [signal(), signal()];
    let count = 0;
    const task = new RepeatingTask(
      () => {
        rounds[count++]?.settle();
        return Promise.resolve();
      },
      () => HOUR,
    );
    tasks.push(task);
    task.start();
    await rounds[0]!.promise;
    task.trigger();
    await rounds[1]!.promise;
    assert.equal(count, 2);
  });

  test("GIVEN triggers during a round WHEN it ends THEN one more round follows it, never one beside it", async () => {
    const release = signal();
    const second = signal();
    let count = 0;
    let concurrent = 0;
    let maxConcurrent = 0;
    const task = new RepeatingTask(
      async () => {
        count++;
        concurrent++;
        maxConcurrent = Math.max(maxConcurrent, concurrent);
        if (count === 1) {
          // Triggered from the round's own synchronous start and while it waits.
          task.trigger();
          await release.promise;
          task.trigger();
        } else second.settle();
        concurrent--;
      },
      () => HOUR,
    );
    tasks.push(task);
    task.start();
    await new Promise((resolve) => setImmediate(resolve));
    task.trigger();
    release.settle();
    await second.promise;
    assert.equal(maxConcurrent, 1);
    assert.equal(count, 2);
  });
});
