/**
 * A file:// put must make the object's name durable, not only its bytes: after a power cut, an artifact its statefile
 * calls committed must still be there under its name. No power cut can be staged here, so this watches the real
 * system calls of a real process (strace): after the rename, an fsync of the object's directory, and of the directory
 * holding each directory the put created.
 */
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, realpathSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { describe, test } from "node:test";

const exec = promisify(execFile);
const root = path.resolve(import.meta.dirname, "..", "..");
const store = path.join(root, "dist", "src", "storage", "file-object-store.js");

/** Why strace cannot trace a child here, or undefined when it can. */
function straceProblem(): string | undefined {
  const probe = spawnSync("strace", ["-f", "-o", "/dev/null", "true"], { encoding: "utf8" });
  if (probe.error) return `strace not found (${probe.error.message}); scripts/install-deps.sh installs it`;
  if (probe.status !== 0) return `strace cannot trace here: ${probe.stderr.trim().split("\n")[0]}`;
  return undefined;
}

interface Call {
  readonly name: string;
  readonly args: string;
  readonly result: string;
}

/** strace -f output as completed calls in order, with `<unfinished ...>` / `<... resumed>` pairs joined. */
function parseTrace(text: string): Call[] {
  const pending = new Map<string, string>();
  const calls: Call[] = [];
  for (const line of text.split("\n")) {
    const m = /^(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const [, pid = "", rest = ""] = m;
    let full: string;
    if (rest.endsWith("<unfinished ...>")) {
      pending.set(pid, rest.slice(0, -"<unfinished ...>".length));
      continue;
    }
    const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(rest);
    if (resumed) {
      full = (pending.get(pid) ?? "") + (resumed[1] ?? "");
      pending.delete(pid);
    } else full = rest;
    const call = /^(\w+)\((.*)\)\s*=\s*(.+)$/.exec(full);
    if (call) calls.push({ name: call[1]!, args: call[2]!, result: call[3]!.trim() });
  }
  return calls;
}

/**
 * Runs `put` (code calling the store `s` for `KEY`) in a real process under strace, and returns the paths it fsynced
 * before and after the rename onto the object.
 */
async function tracedPut(put: string) {
  const dir = realpathSync(mkdtempSync(path.join(tmpdir(), "capsule-durable-")));
  const bucket = path.join(dir, "bucket");
  const log = path.join(dir, "trace.log");
  const key = "p/c.a/postgresql/backup-1/statefile.json";
  const script = `import(${JSON.stringify(store)}).then(async ({ FileObjectStore }) => {
    const s = new FileObjectStore(${JSON.stringify(bucket)});
    const KEY = ${JSON.stringify(key)};
    ${put}
  })`;
  await exec("strace", [
    "-f",
    "-qq",
    "-e",
    "trace=openat,fsync,rename,renameat,renameat2",
    "-o",
    log,
    process.execPath,
    "-e",
    script,
  ]);
  const calls = parseTrace(readFileSync(log, "utf8"));
  const target = path.join(bucket, key);
  const renamed = calls.findIndex(
    (c) => c.name.startsWith("rename") && c.args.includes(`"${target}"`) && c.result === "0",
  );
  assert.ok(renamed >= 0, "the put renames its temp file onto the object");
  // Which path each file descriptor was opened on, as of each call.
  const openedAs = new Map<string, string>();
  const fsyncedBefore = new Set<string>();
  const fsyncedAfter = new Set<string>();
  calls.forEach((call, i) => {
    const opened = /^AT_FDCWD, "([^"]+)"/.exec(call.args);
    if (call.name === "openat" && opened && /^\d+$/.test(call.result)) openedAs.set(call.result, opened[1]!);
    if (call.name !== "fsync" || call.result !== "0") return;
    const name = openedAs.get(call.args.trim());
    if (name) (i > renamed ? fsyncedAfter : fsyncedBefore).add(name);
  });
  return { bucket, fsyncedBefore, fsyncedAfter };
}

/** The object's directory (its new name), and the holders of backup-1, postgresql, c.a and p, which the put created. */
function assertNamesDurable(bucket: string, fsyncedAfter: ReadonlySet<string>): void {
  for (const changed of ["p/c.a/postgresql/backup-1", "p/c.a/postgresql", "p/c.a", "p", ""]) {
    const wanted = changed ? path.join(bucket, changed) : bucket;
    assert.ok(
      fsyncedAfter.has(wanted),
      `${wanted} fsynced after the rename (fsynced: ${[...fsyncedAfter].join(", ")})`,
    );
  }
}

describe("file:// store durability (strace of a real process)", () => {
  test("GIVEN a put into directories that do not exist yet WHEN traced THEN after the rename each changed directory is fsynced", async (t) => {
    const problem = straceProblem();
    if (problem) {
      t.skip(problem);
      return;
    }
    const { bucket, fsyncedAfter } = await tracedPut(`await s.put(KEY, "{}");`);
    assertNamesDurable(bucket, fsyncedAfter);
  });

  test("GIVEN an object a child process writes (putWritten) WHEN traced THEN its bytes are fsynced before the rename and each changed directory after it", async (t) => {
    const problem = straceProblem();
    if (problem) {
      t.skip(problem);
      return;
    }
    const writer = `(fd) => new Promise((resolve, reject) => {
      const child = require("node:child_process").spawn("sh", ["-c", "printf written"], { stdio: ["ignore", fd, "ignore"] });
      child.on("close", (code) => (code === 0 ? resolve() : reject(new Error("writer failed"))));
    })`;
    const { bucket, fsyncedBefore, fsyncedAfter } = await tracedPut(
      `await s.putWritten(KEY, ${writer}, () => undefined);`,
    );
    const temp = [...fsyncedBefore].filter((p) =>
      p.startsWith(path.join(bucket, "p/c.a/postgresql/backup-1/")),
    );
    assert.equal(
      temp.length,
      1,
      `the temp file is fsynced before the rename (fsynced: ${[...fsyncedBefore].join(", ")})`,
    );
    assert.match(temp[0]!, /statefile\.json\.capsule-tmp-/);
    assertNamesDurable(bucket, fsyncedAfter);
    assert.equal(
      readFileSync(path.join(bucket, "p/c.a/postgresql/backup-1/statefile.json"), "utf8"),
      "written",
    );
  });
});
