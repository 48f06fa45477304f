/** Shared bench plumbing: run a shell pipeline, time it, and read the peak RSS of its measured stage. */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";

export interface Measured {
  readonly seconds: number;
  /** Peak resident set of the stage wrapped in `$TIME`, in MB. */
  readonly peakMb: number;
  readonly stdout: string;
}

const TIME = "/usr/bin/time";

/**
 * Runs `script` in bash with pipefail. Wrap the stage to measure as `$TIME …`: it becomes GNU time reporting that
 * stage's peak RSS on stderr. Asynchronous on purpose: the harness' servers log through pipes this process must
 * keep draining, and a blocked event loop would stall them mid-benchmark.
 */
export async function measure(script: string, env: NodeJS.ProcessEnv = process.env): Promise<Measured> {
  if (!existsSync(TIME)) throw new Error(`${TIME} not found: apt-get install time`);
  const started = process.hrtime.bigint();
  const child = spawn("bash", ["-c", `set -euo pipefail; ${script}`], {
    env: { ...env, TIME: `${TIME} -f BENCH_RSS_KB=%M` },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr.on("data", (c: Buffer) => (stderr = (stderr + c.toString()).slice(-65536)));
  const status = await new Promise<number | null>((resolve) => child.on("close", resolve));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (status !== 0) throw new Error(`bench step failed (${status}): ${script}\n${stderr}`);
  const kb = [...stderr.matchAll(/BENCH_RSS_KB=(\d+)/g)].map((m) => Number(m[1]));
  return { seconds, peakMb: Math.max(0, ...kb) / 1024, stdout };
}

/** The awscli to compare against: Debian's if present (a pyenv shim may shadow it on PATH). */
export function awsCli(): string {
  return existsSync("/usr/bin/aws") ? "/usr/bin/aws" : "aws";
}

export function mbPerSecond(bytes: number, seconds: number): string {
  return (bytes / 1e6 / seconds).toFixed(0);
}
