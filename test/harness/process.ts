/**
 * Process plumbing for the test servers: find binaries, run commands with a time limit, start long-running
 * daemons in their own process group with output to a log file, wait until they are ready, and stop them.
 *
 * Every daemon and temporary directory is kept in a registry. If the process ends early — SIGINT, SIGTERM,
 * an uncaught error, or plain `process.exit` — everything in the registry is killed and removed, so a test run
 * never leaves a server behind.
 */
import { spawn, type ChildProcess } from "node:child_process";
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
} from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, isAbsolute, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** A failure of the harness itself (not of a test), with the log files that explain it. */
export class HarnessError extends Error {
  readonly logFiles: string[];
  constructor(message: string, options: { logFiles?: string[]; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "HarnessError";
    this.logFiles = options.logFiles ?? [];
  }
}

/** The error's message, plus the tail of each log file it names. */
export function formatHarnessError(err: unknown, lines = 30): string {
  if (!(err instanceof Error)) return String(err);
  const parts = [err instanceof HarnessError ? err.message : (err.stack ?? err.message)];
  if (err instanceof HarnessError) {
    for (const file of err.logFiles) {
      parts.push(`--- last ${lines} lines of ${file} ---`, tailFile(file, lines) || "(empty)", "---");
    }
  }
  return parts.join("\n");
}

/** The last `lines` lines of a file ("" if it does not exist). */
export function tailFile(file: string, lines = 30): string {
  try {
    const text = readFileSync(file, "utf8").trimEnd();
    return text.split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Full path of an executable, searching `extraDirs` first and then PATH; undefined if absent. */
export function findBinary(name: string, extraDirs: string[] = []): string | undefined {
  if (isAbsolute(name)) return isExecutable(name) ? name : undefined;
  const dirs = [...extraDirs, ...(process.env["PATH"] ?? "").split(delimiter), "/usr/sbin", "/sbin"];
  for (const dir of dirs) {
    if (!dir) continue;
    const file = join(dir, name);
    if (isExecutable(file)) return file;
  }
  return undefined;
}

/** Like findBinary, but a missing binary is a one-line error naming the Debian package that provides it. */
export function requireBinary(name: string, debianPackage: string, extraDirs: string[] = []): string {
  const file = findBinary(name, extraDirs);
  if (file === undefined) throw new HarnessError(`${name} not found: apt-get install ${debianPackage}`);
  return file;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  uid?: number;
  gid?: number;
  /** Kill the command and fail after this long. Default 60 s. */
  timeoutMs?: number;
  /** Log files that explain a failure of this command (attached to the error). */
  logFiles?: string[];
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

function commandLine(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map((a) => (/^[\w./:=@,+-]+$/.test(a) ? a : JSON.stringify(a))).join(" ");
}

/** Run a command to completion; reject with its output if it fails, cannot start, or takes too long. */
export function run(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: options.env ?? process.env,
      cwd: options.cwd,
      uid: options.uid,
      gid: options.gid,
      detached: true,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killQuietly(-(child.pid ?? 0), "SIGKILL");
    }, timeoutMs);
    // Interrupted mid-command (initdb, ceph osd new, ...): the command goes too.
    const unregister = registerTeardown({
      name: cmd,
      stop: () => {
        killQuietly(-(child.pid ?? 0), "SIGKILL");
        return Promise.resolve();
      },
      killSync: () => {
        killQuietly(-(child.pid ?? 0), "SIGKILL");
        return child.pid === undefined ? [] : [child.pid];
      },
    });
    child.once("error", (err) => {
      unregister();
      clearTimeout(timer);
      reject(
        new HarnessError(`${commandLine(cmd, args)}: ${err.message}`, {
          cause: err,
          logFiles: options.logFiles,
        }),
      );
    });
    child.once("close", (code, signal) => {
      unregister();
      clearTimeout(timer);
      if (code === 0 && !timedOut) {
        resolve({ stdout, stderr });
        return;
      }
      const why = timedOut
        ? `timed out after ${timeoutMs / 1000} s`
        : signal
          ? `killed by ${signal}`
          : `exit code ${code}`;
      const output = (stderr.trim() || stdout.trim()).split("\n").slice(-15).join("\n");
      reject(
        new HarnessError(`${commandLine(cmd, args)} failed (${why})${output ? `:\n${output}` : ""}`, {
          logFiles: options.logFiles,
        }),
      );
    });
  });
}

function killQuietly(target: number, signal: NodeJS.Signals): void {
  if (target === 0) return;
  try {
    process.kill(target, signal);
  } catch {
    // ESRCH: already gone.
  }
}

/** True while the process exists and is not a zombie. */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Registry of things to tear down.

interface Entry {
  name: string;
  /** Orderly stop (used on signals). */
  stop(): Promise<void>;
  /** Last-resort synchronous kill (used in the 'exit' handler); returns the pids to wait for. */
  killSync(): number[];
}

const entries = new Set<Entry>();
const tempDirs = new Set<string>();
let handlersInstalled = false;
let shuttingDown = false;

/** True once SIGINT/SIGTERM/SIGHUP has started the teardown (the process exits when it is done). */
export function isShuttingDown(): boolean {
  return shuttingDown;
}

/**
 * Register something to tear down if the process ends early. Returns the function that unregisters it.
 * `stop` is the orderly way (awaited on SIGINT/SIGTERM), `killSync` the last resort in the 'exit' handler.
 */
export function registerTeardown(entry: Entry): () => void {
  installHandlers();
  entries.add(entry);
  return () => entries.delete(entry);
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(signal, () => void onSignal(signal));
  }
  process.on("uncaughtExceptionMonitor", () => {
    if (entries.size > 0 || tempDirs.size > 0)
      process.stderr.write("harness: uncaught error; killing test servers\n");
  });
  process.on("exit", killAllSync);
}

const signalExitCodes: Record<string, number> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 };

async function onSignal(signal: NodeJS.Signals): Promise<void> {
  if (shuttingDown) {
    process.stderr.write(`harness: ${signal} again; killing test servers now\n`);
    process.exit(signalExitCodes[signal] ?? 1); // the 'exit' handler kills what is left
  }
  shuttingDown = true;
  process.stderr.write(`\nharness: ${signal}; stopping test servers...\n`);
  // This timer also keeps the process alive until the stop is done (the daemons themselves do not).
  const deadline = sleep(30_000).then(() => process.stderr.write("harness: orderly stop took too long\n"));
  await Promise.race([stopAll(), deadline]);
  process.exit(signalExitCodes[signal] ?? 1);
}

/**
 * Stop everything registered, newest first (radosgw before the OSD before the monitor), then remove the
 * registered temporary directories.
 */
export async function stopAll(): Promise<void> {
  for (const entry of [...entries].reverse()) {
    try {
      await entry.stop();
    } catch {
      // keep going: the rest must stop too
    }
  }
  entries.clear();
  await Promise.allSettled([...tempDirs].map((d) => removeTempDir(d)));
}

function killAllSync(): void {
  const pids = [...entries].flatMap((e) => {
    try {
      return e.killSync();
    } catch {
      return [];
    }
  });
  entries.clear();
  // Give the processes up to 3 s to go (PostgreSQL's postmaster stops its backends on SIGQUIT), then SIGKILL.
  const waitArray = new Int32Array(new SharedArrayBuffer(4));
  const deadline = performance.now() + 3000;
  while (pids.some(isAlive) && performance.now() < deadline) Atomics.wait(waitArray, 0, 0, 50);
  for (const pid of pids) if (isAlive(pid)) killQuietly(pid, "SIGKILL");
  for (const dir of keepTempDirs ? [] : tempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // best effort
    }
  }
  tempDirs.clear();
}

// ---------------------------------------------------------------------------------------------------------------
// Temporary directories.

/** Keep test server directories (logs, data) after a normal stop: CAPSULE_TEST_KEEP=1. */
export const keepTempDirs = process.env["CAPSULE_TEST_KEEP"] === "1";

/** A new directory under the OS temp dir, removed at teardown. */
export function makeTempDir(prefix: string): string {
  installHandlers();
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

/** Remove a directory made by makeTempDir (unless CAPSULE_TEST_KEEP=1). */
export async function removeTempDir(dir: string): Promise<void> {
  if (!keepTempDirs) await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  // Only now: if the process exits during the rm, the 'exit' handler finishes it.
  tempDirs.delete(dir);
}

/**
 * Forget a directory made by makeTempDir without removing it (its logs explain a failure to start). Not while
 * an interrupt tears everything down: then the failure is ours, and the directory goes too.
 */
export function keepTempDir(dir: string): void {
  if (!shuttingDown) tempDirs.delete(dir);
}

// ---------------------------------------------------------------------------------------------------------------
// Daemons.

export interface DaemonOptions {
  /** Short name for messages, e.g. "ceph-mon". */
  name: string;
  /** stdout and stderr are appended here. */
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  uid?: number;
  gid?: number;
  /** Signal for an orderly stop. Default SIGTERM. */
  stopSignal?: NodeJS.Signals;
  /** Signal for the synchronous last-resort kill. Default SIGKILL. */
  emergencySignal?: NodeJS.Signals;
  /** Send signals to the whole process group (true, default) or only to the process. */
  signalGroup?: boolean;
  /** How long an orderly stop may take before SIGKILL. Default 10 s. */
  stopTimeoutMs?: number;
}

export interface Daemon {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** undefined while running; "exit code N" / "signal S" once it has exited. */
  readonly exitStatus: string | undefined;
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>;
  /** Orderly stop, then SIGKILL after the stop timeout. Safe to call more than once. */
  stop(): Promise<void>;
}

/**
 * Start a long-running process in its own process group (so a Ctrl-C in the terminal reaches us, not it),
 * with stdout/stderr appended to `logFile`. It does not keep the Node.js event loop alive.
 */
export function startDaemon(cmd: string, args: readonly string[], options: DaemonOptions): Daemon {
  const fd = openSync(options.logFile, "a");
  let child: ChildProcess;
  try {
    child = spawn(cmd, args, {
      stdio: ["ignore", fd, fd],
      env: options.env ?? process.env,
      cwd: options.cwd,
      uid: options.uid,
      gid: options.gid,
      detached: true,
    });
  } finally {
    closeSync(fd);
  }
  child.unref();
  const pid = child.pid;
  if (pid === undefined) {
    throw new HarnessError(`${options.name}: could not start ${cmd}`, { logFiles: [options.logFile] });
  }
  let exitStatus: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once("exit", (code, signal) => {
      exitStatus = signal ? `signal ${signal}` : `exit code ${code}`;
      resolve();
    });
    child.once("error", (err) => {
      exitStatus = `failed to start: ${err.message}`;
      resolve();
    });
  });
  const signalGroup = options.signalGroup ?? true;
  const target = signalGroup ? -pid : pid;
  const stopTimeoutMs = options.stopTimeoutMs ?? 10_000;

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (exitStatus === undefined) {
        killQuietly(target, options.stopSignal ?? "SIGTERM");
        if (!(await exitsWithin(exited, stopTimeoutMs))) {
          killQuietly(target, "SIGKILL");
          killQuietly(pid, "SIGKILL");
          await exitsWithin(exited, 5000);
        }
      }
      // Whatever else is left in its process group (helpers it forked) goes too.
      if (signalGroup) killQuietly(-pid, "SIGKILL");
      unregister();
    })();
    return stopping;
  };
  const unregister = registerTeardown({
    name: options.name,
    stop,
    killSync: () => {
      killQuietly(target, options.emergencySignal ?? "SIGKILL");
      return [pid];
    },
  });

  return {
    name: options.name,
    pid,
    logFile: options.logFile,
    get exitStatus() {
      return exitStatus;
    },
    exited,
    stop,
  };
}

/** Whether `exited` settles within `ms` (the timer is cleared either way, so it holds no process open). */
async function exitsWithin(exited: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([exited.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface WaitOptions {
  timeoutMs: number;
  intervalMs?: number;
  /** Fail at once if one of these exits while we wait. */
  daemons?: Daemon[];
}

/** Poll `check` until it returns true. A thrown error counts as "not yet" (its message is kept for the report). */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  options: WaitOptions,
): Promise<void> {
  const deadline = performance.now() + options.timeoutMs;
  let lastError = "";
  for (;;) {
    for (const d of options.daemons ?? []) {
      if (d.exitStatus !== undefined) {
        throw new HarnessError(`${d.name} exited (${d.exitStatus}) while waiting for ${what}`, {
          logFiles: [d.logFile],
        });
      }
    }
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    if (performance.now() >= deadline) {
      throw new HarnessError(
        `timed out after ${options.timeoutMs / 1000} s waiting for ${what}` +
          (lastError ? ` (last error: ${lastError.split("\n")[0]})` : ""),
        { logFiles: (options.daemons ?? []).map((d) => d.logFile) },
      );
    }
    await sleep(options.intervalMs ?? 200);
  }
}

/** Numeric uid/gid of a user, from /etc/passwd; undefined if there is no such user. */
export function lookupUser(name: string): { uid: number; gid: number; home: string } | undefined {
  if (!existsSync("/etc/passwd")) return undefined;
  for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
    const [user, , uid, gid, , home] = line.split(":");
    if (user === name && uid !== undefined && gid !== undefined) {
      return { uid: Number(uid), gid: Number(gid), home: home ?? "/" };
    }
  }
  return undefined;
}
