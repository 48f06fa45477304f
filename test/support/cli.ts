import { PassThrough } from "node:stream";
import { runCli } from "../../src/commands/index.js";

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `capsule …` in-process with captured output and the given environment (nothing inherited). */
export async function capsule(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const stdin = new PassThrough();
  let out = "";
  let err = "";
  stdout.on("data", (c: Buffer) => (out += c.toString()));
  stderr.on("data", (c: Buffer) => (err += c.toString()));
  const code = await runCli(args, { stdin, stdout, stderr, env: { PATH: process.env["PATH"], ...env } });
  return { code, stdout: out, stderr: err };
}
