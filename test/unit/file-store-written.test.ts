/**
 * `FileObjectStore.putWritten`: a child process writes the object through the descriptor the store opened, and the
 * store reads the bytes back as they land. Real processes on a real directory: the object appears whole or not at
 * all, the bytes observed are the bytes stored, and a failure leaves neither the object nor its temp file.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { before, describe, test } from "node:test";
import { FileObjectStore } from "../../src/storage/file-object-store.js";
import { filesUnder } from "../support/files.js";

/** Runs `sh -c script` with its stdout on `fd`; resolves when it exits 0, is killed when `signal` aborts. */
function shellInto(script: string) {
  return (fd: number, signal: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      const child = spawn("sh", ["-c", script], { stdio: ["ignore", fd, "ignore"] });
      signal.addEventListener("abort", () => child.kill("SIGKILL"), { once: true });
      child.on("error", reject);
      child.on("close", (code, killedBy) =>
        code === 0
          ? resolve()
          : reject(new Error(`writer ${killedBy ? `killed by ${killedBy}` : `exited ${code}`}`)),
      );
    });
}

/** Every name under `dir`, temp files included (the store's own listing hides them). */
async function namesUnder(dir: string): Promise<string[]> {
  return (await filesUnder(dir)).map((file) => path.relative(dir, file));
}

describe("FileObjectStore.putWritten", () => {
  let root: string;
  let store: FileObjectStore;

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), "capsule-written-"));
    store = new FileObjectStore(root);
  });

  test("GIVEN a writer that writes in bursts with pauses WHEN put THEN the observed bytes are the stored bytes, in order", async () => {
    // 3 MiB in three bursts: the reader catches up with the writer and must wait for more, twice.
    const script =
      "head -c 1048576 /dev/urandom; sleep 0.2; head -c 1048576 /dev/urandom; sleep 0.2; head -c 1048577 /dev/urandom";
    const observed = createHash("sha256");
    let bytes = 0;
    await store.putWritten("a/bursts.bin", shellInto(script), (chunk) => {
      observed.update(chunk);
      bytes += chunk.length;
    });
    const stored = await readFile(path.join(root, "a/bursts.bin"));
    assert.equal(bytes, 3 * 1048576 + 1);
    assert.equal(stored.length, bytes);
    assert.equal(observed.digest("hex"), createHash("sha256").update(stored).digest("hex"));
    assert.deepEqual(await namesUnder(path.join(root, "a")), ["bursts.bin"]);
  });

  test("GIVEN a writer that writes nothing WHEN put THEN the object is empty and nothing was observed", async () => {
    let calls = 0;
    await store.putWritten("b/empty.bin", shellInto("true"), () => calls++);
    assert.equal((await store.head("b/empty.bin"))?.size, 0);
    assert.equal(calls, 0);
  });

  test("GIVEN a writer that fails after writing WHEN put THEN it rejects with the writer's error and leaves no object and no temp file", async () => {
    await assert.rejects(
      store.putWritten("c/failed.bin", shellInto("head -c 100000 /dev/zero; exit 3"), () => undefined),
      /writer exited 3/,
    );
    assert.equal(await store.head("c/failed.bin"), undefined);
    assert.deepEqual(await namesUnder(path.join(root, "c")), []);
  });

  test("GIVEN an object already under the key WHEN a writer fails THEN the old object is untouched", async () => {
    await store.put("d/kept.bin", "the good one");
    await assert.rejects(
      store.putWritten("d/kept.bin", shellInto("printf partial; exit 1"), () => undefined),
      /writer exited 1/,
    );
    assert.equal((await readFile(path.join(root, "d/kept.bin"))).toString(), "the good one");
    assert.deepEqual(await namesUnder(path.join(root, "d")), ["kept.bin"]);
  });

  test("GIVEN a writer that cannot even start WHEN put THEN it rejects with its error and leaves no temp file", async () => {
    await assert.rejects(
      store.putWritten(
        "f/unstarted.bin",
        () => {
          throw new Error("spawn refused");
        },
        () => undefined,
      ),
      /spawn refused/,
    );
    assert.deepEqual(await namesUnder(path.join(root, "f")), []);
  });

  test("GIVEN the reading side fails WHEN a writer is still writing THEN the writer is stopped and its temp file removed", async () => {
    // The writer would never end on its own: only the store's abort stops it.
    await assert.rejects(
      store.putWritten("e/endless.bin", shellInto("cat /dev/zero"), () => {
        throw new Error("observer failed");
      }),
      /observer failed/,
    );
    assert.equal(await store.head("e/endless.bin"), undefined);
    assert.deepEqual(await namesUnder(path.join(root, "e")), []);
  });
});
