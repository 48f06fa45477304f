/**
 * A real `capsule` process for fault-injection tests: started from source with tsx, its stderr watched so a test can
 * wait for a phase line (or a failpoint, src/util/failpoint.ts) and then send SIGINT, SIGTERM or SIGKILL to it —
 * to capsule alone, as `kill PID` does, not to its process group.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { FAILPOINTS_ENV } from "../../src/util/failpoint.js";

export interface CapsuleProcess {
  readonly child: ChildProcess;
  /** Everything printed so far. */
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Resolves once stderr matches `pattern`; rejects if the process exits first. */
  waitForStderr(pattern: RegExp): Promise<void>;
  signal(signal: NodeJS.Signals): void;
  running(): boolean;
  /** Resolves when the process has exited, with its code (or the signal that killed it). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startCapsule(
  args: string[],
  env: NodeJS.ProcessEnv,
  options: { failpoints?: string[] } = {},
): CapsuleProcess {
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", ...args], {
    env: {
      PATH: process.env["PATH"],
      HOME: process.env["HOME"],
      ...env,
      ...(options.failpoints?.length ? { [FAILPOINTS_ENV]: options.failpoints.join(",") } : {}),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  const waiters: Array<() => void> = [];
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr.on("data", (c: Buffer) => {
    err += c.toString();
    for (const w of [...waiters]) w();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    signal: (signal) => void child.kill(signal),
    running: () => child.exitCode === null && child.signalCode === null,
    waitForStderr(pattern) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!pattern.test(err)) return;
          waiters.splice(waiters.indexOf(check), 1);
          resolve();
        };
        waiters.push(check);
        check();
        void exited.then(({ code, signal }) => {
          if (!pattern.test(err)) {
            reject(
              new Error(
                `capsule exited (${code ?? signal}) before printing ${String(pattern)}; stderr:\n${err}`,
              ),
            );
          }
        });
      });
    },
  };
}
