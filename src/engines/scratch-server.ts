/**
 * Throwaway database servers for verification drills: a temp directory, a free loopback port, a server process
 * that is always stopped and whose directory is always removed — also when the drill fails. Used only where the
 * server binaries are present (the capsule image ships them; docs/design.md §8 / issue 8).
 *
 * The server dies with capsule, however capsule dies (#16): it runs under a small `sh` guard whose stdin is a pipe
 * from capsule; when the pipe closes — capsule stopping it, or the kernel closing it after a SIGKILL — the guard
 * stops the server and removes the directory. Each directory carries `capsule.owner` (the owning capsule's PID), so
 * `findScratchLeftovers` can tell a live run's directory from debris and never touches the former.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { chown, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { CapsuleError, ErrorCode } from "../domain/errors.js";
import { lastMeaningfulLine } from "./process-pipeline.js";

export interface ScratchServer {
  readonly dir: string;
  readonly port: number;
  /** Whether the server process is still alive (PostgreSQL ends itself when a recovery cannot reach its target). */
  running(): boolean;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

/** Servers such as PostgreSQL refuse to run as root: when capsule is root, they run as this account. */
export function serviceAccount(name: string): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = existsSync("/etc/passwd")
    ? readFileSync("/etc/passwd", "utf8")
        .split("\n")
        .find((l) => l.startsWith(`${name}:`))
    : undefined;
  const [, , uid, gid] = line?.split(":") ?? [];
  if (uid === undefined || gid === undefined) {
    throw new CapsuleError(
      ErrorCode.ToolMissing,
      `running as root and there is no "${name}" user to run the scratch server as`,
    );
  }
  return { uid: Number(uid), gid: Number(gid) };
}

const OWNER_FILE = "capsule.owner";

/** Marks `dir` as this capsule's: `capsule.owner` names its PID, so a later run tells a live run's dir from debris. */
export async function markOwner(dir: string): Promise<void> {
  const mark = { pid: process.pid, startedAt: new Date().toISOString() };
  await writeFile(path.join(dir, OWNER_FILE), `${JSON.stringify(mark)}\n`);
}

/** The PID `dir`'s `capsule.owner` names; undefined without one. */
export function markedOwner(dir: string): Promise<unknown> {
  return readFile(path.join(dir, OWNER_FILE), "utf8").then(
    (text) => (JSON.parse(text) as { pid?: unknown }).pid,
    () => undefined,
  );
}

export async function scratchDir(label: string, owner?: { uid: number; gid: number }): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), `capsule-${label}-`));
  await markOwner(dir);
  if (owner) await chown(dir, owner.uid, owner.gid);
  return dir;
}

export interface ScratchLeftover {
  readonly dir: string;
  /** The PID of a server still running from it (PostgreSQL's postmaster.pid), if any. */
  readonly serverPid?: number;
}

/** `capsule-<label>-*` directories whose owning capsule (named in `capsule.owner`) is gone: killed before its guard ran. */
export async function findScratchLeftovers(label: string, root = tmpdir()): Promise<ScratchLeftover[]> {
  const prefix = `capsule-${label}-`;
  const found: ScratchLeftover[] = [];
  for (const name of (await readdir(root).catch(() => [])).filter((n) => n.startsWith(prefix)).sort()) {
    const dir = path.join(root, name);
    const owner = await markedOwner(dir);
    if (owner === undefined && (await isStaleAndEmpty(dir))) {
      // A removal cut short (its guard and a --check racing, say) can leave the bare directory: nothing to judge.
      found.push({ dir });
      continue;
    }
    // No marker: an older capsule's (perhaps still running) or not capsule's at all — not ours to judge.
    if (typeof owner !== "number" || isAlive(owner)) continue;
    const serverPid = await readFile(path.join(dir, "data", "postmaster.pid"), "utf8").then(
      (text) => Number(text.split("\n")[0]),
      () => undefined,
    );
    found.push({ dir, ...(serverPid && isAlive(serverPid) ? { serverPid } : {}) });
  }
  return found;
}

/** Stops a leftover's server (PostgreSQL: fast shutdown, then SIGKILL) and removes its directory. */
export async function removeScratchLeftover(leftover: ScratchLeftover): Promise<void> {
  const pid = leftover.serverPid;
  if (pid !== undefined) {
    signalProcess(pid, "SIGINT");
    for (let i = 0; i < 100 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
    if (isAlive(pid)) signalProcess(pid, "SIGKILL");
  }
  // The dying run's guard may be removing the same tree: retry what the other removal pulled away underneath.
  await rm(leftover.dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
}

/** Empty and untouched for a minute: a live run writes its marker the moment it creates its directory. */
async function isStaleAndEmpty(dir: string): Promise<boolean> {
  const [entries, info] = await Promise.all([
    readdir(dir).catch(() => ["?"]),
    stat(dir).catch(() => undefined),
  ]);
  return entries.length === 0 && info !== undefined && Date.now() - info.mtimeMs > 60_000;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: alive, but another user's.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Whether `command` (a path, or a name looked up on PATH) exists: the guard shell would only say "not found". */
function onPath(command: string): boolean {
  if (command.includes("/")) return existsSync(command);
  return (process.env["PATH"] ?? "")
    .split(path.delimiter)
    .some((dir) => dir && existsSync(path.join(dir, command)));
}

/** Alive and not a zombie (the guard reaps its server only once told to stop). */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return isAlive(pid);
  }
}

function signalProcess(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/**
 * Runs `command args…` in the background, then waits for stdin to close, stops the server with `signal`, waits for
 * it, and removes `dir`. INT and TERM are ignored so a Ctrl-C to the whole process group cannot skip the cleanup.
 */
const GUARD_SCRIPT = `trap '' INT TERM
"$@" &
server=$!
echo "server $server"
cat >/dev/null
kill -$STOP_SIGNAL $server 2>/dev/null
wait $server
rm -rf "$SCRATCH_DIR"`;

/**
 * Starts `command`, waits until `ready()` says yes (bounded), and returns a handle whose `stop()` ends the process
 * (SIGTERM, then SIGKILL) and removes `dir`. A process that exits early fails with the tail of its output.
 */
export async function startScratchServer(options: {
  command: string;
  args: string[];
  dir: string;
  port: number;
  owner?: { uid: number; gid: number } | undefined;
  ready: () => Promise<boolean>;
  package: string;
  timeoutMs?: number;
  /** How the guard stops the server (PostgreSQL: INT, a fast shutdown that does not wait for clients). */
  stopSignal?: "INT" | "TERM";
  /** Aborts the wait for readiness. */
  signal?: AbortSignal;
}): Promise<ScratchServer> {
  if (!onPath(options.command)) {
    await rm(options.dir, { recursive: true, force: true });
    throw new CapsuleError(ErrorCode.ToolMissing, `${options.command} not found: install ${options.package}`);
  }
  const child: ChildProcess = spawn(
    "sh",
    ["-c", GUARD_SCRIPT, "capsule-scratch-guard", options.command, ...options.args],
    {
      cwd: options.dir,
      env: { PATH: process.env["PATH"], STOP_SIGNAL: options.stopSignal ?? "TERM", SCRATCH_DIR: options.dir },
      stdio: ["pipe", "pipe", "pipe"],
      ...(options.owner ? { uid: options.owner.uid, gid: options.owner.gid } : {}),
    },
  );
  let output = "";
  let serverPid: number | undefined;
  const keep = (c: Buffer) => {
    output = (output + c.toString()).slice(-4096);
    serverPid ??= Number(/^server (\d+)$/m.exec(output)?.[1]) || undefined;
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  child.stdin?.on("error", () => undefined);
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  let spawnError: NodeJS.ErrnoException | undefined;
  child.once("error", (error: NodeJS.ErrnoException) => (spawnError = error));

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.stdin?.end();
      const killer = setTimeout(() => {
        if (serverPid !== undefined) signalProcess(serverPid, "SIGKILL");
        child.kill("SIGKILL");
      }, 10_000);
      await exited;
      clearTimeout(killer);
    }
    await rm(options.dir, { recursive: true, force: true });
  };

  const deadline = performance.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    if (spawnError) {
      await stop();
      throw spawnError.code === "ENOENT"
        ? new CapsuleError(ErrorCode.ToolMissing, `${options.command} not found: install ${options.package}`)
        : spawnError;
    }
    if (child.exitCode !== null || (serverPid !== undefined && !isRunning(serverPid))) {
      await stop();
      throw new CapsuleError(
        ErrorCode.ToolFailed,
        `${path.basename(options.command)} exited at start: ${lastLine(output)}`,
      );
    }
    if (await options.ready().catch(() => false)) {
      const running = () =>
        child.exitCode === null && (serverPid === undefined ? true : isRunning(serverPid));
      return { dir: options.dir, port: options.port, running, stop };
    }
    if (options.signal?.aborted) {
      await stop();
      throw options.signal.reason;
    }
    if (performance.now() > deadline) {
      await stop();
      throw new CapsuleError(
        ErrorCode.ToolFailed,
        `${path.basename(options.command)} did not become ready: ${lastLine(output)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The newest `/usr/lib/postgresql/<major>/bin` (Debian's layout), or undefined. */
export function newestPostgresBinDir(root = "/usr/lib/postgresql"): string | undefined {
  if (!existsSync(root)) return undefined;
  const majors = readdirSync(root)
    .filter((d) => /^\d+$/.test(d) && existsSync(path.join(root, d, "bin", "initdb")))
    .sort((a, b) => Number(b) - Number(a));
  return majors[0] ? path.join(root, majors[0], "bin") : undefined;
}

function lastLine(text: string): string {
  return lastMeaningfulLine(text) || "no output";
}
