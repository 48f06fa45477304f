/**
 * External tools chained like a shell pipeline (`pg_dump | zstd`), with the guarantees a shell does not give: the
 * output stream ends cleanly only after every process exited 0, so a consumer (an upload, a restore) can never
 * mistake a truncated stream for a whole one; a failure names the tool and its last stderr line, redacted.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { PassThrough, type Readable } from "node:stream";
import type { ArtifactProducer } from "../domain/artifact.js";
import { CapsuleError, ErrorCode } from "../domain/errors.js";
import { redact } from "../redact.js";

export interface ToolCommand {
  readonly command: string;
  readonly args: readonly string[];
  /** Added to a minimal inherited environment; secrets go here, never in args. */
  readonly env?: Record<string, string | undefined>;
  /** The Debian package that provides the command, for the "not found" message. */
  readonly package?: string;
  /** Run as this account (tools such as initdb refuse to run as root). */
  readonly owner?: { readonly uid: number; readonly gid: number };
  /** Sees the tool's stderr as it comes (pg_basebackup reports its WAL positions there). */
  readonly onStderr?: (text: string) => void;
}

export interface RunningPipeline {
  /** The last process' stdout; errors if any process fails, ends only after all exited 0. */
  readonly output: Readable;
  /** Resolves when every process exited 0; rejects with the first failure. */
  readonly done: Promise<void>;
  /**
   * Kills every process (e.g. when the consumer failed). With a `cause`, `done` rejects with it unless a tool had
   * already failed: the tools' "terminated" is the casualty, the cause is what went wrong first.
   */
  kill(cause?: Error): void;
}

const STDERR_KEEP_BYTES = 16 * 1024;

export function spawnPipeline(
  commands: readonly ToolCommand[],
  options: { input?: Readable; signal?: AbortSignal } = {},
): RunningPipeline {
  const input = options.input;
  const tools = startTools(commands, { ...options, lastOutput: "pipe" });
  const last = tools.children.at(-1)!.stdout!;
  const output = new PassThrough();
  // Hold the end of the stream until every process has exited 0: a consumer sees either all bytes and a clean
  // end, or an error — never a short stream that ends cleanly.
  last.on("data", (chunk: Buffer) => {
    if (!output.write(chunk)) {
      last.pause();
      output.once("drain", () => last.resume());
    }
  });
  last.on("end", () => {
    tools.done.then(
      () => output.end(),
      (error: unknown) => output.destroy(error as Error),
    );
  });
  tools.done.catch((error: unknown) => output.destroy(error as Error));
  output.on("close", () => {
    if (!output.writableFinished) killAll(tools.children);
  });
  // The input's failure (a download cut off, a checksum mismatch) is the first cause, not the tools it kills.
  input?.on("error", (error) => tools.kill(error));
  return { output, done: tools.done, kill: tools.kill };
}

/**
 * Runs the tools with the last one writing straight into the open file `fd`: not a byte of their output passes
 * through this process. Resolves once every tool exited 0. The last tool is tied to this process (it is killed if
 * capsule dies, even by SIGKILL, and the tools before it then see a broken pipe): no pipe to capsule would stop it
 * otherwise. Only where `toolsCanBeTied()` said so.
 */
export function spawnPipelineIntoFile(
  commands: readonly ToolCommand[],
  fd: number,
  options: { signal?: AbortSignal } = {},
): Pick<StartedTools, "done" | "kill"> {
  return startTools(commands, { ...options, lastOutput: fd });
}

/** `setpriv` from util-linux sets the parent-death signal before it runs a tool (Node's spawn cannot). */
const TIE = ["setpriv", "--pdeathsig", "KILL", "--"] as const;
let tieWorks: Promise<boolean> | undefined;

/** Whether this system can start a tool that dies with capsule (util-linux' setpriv with --pdeathsig); asked once. */
export function toolsCanBeTied(): Promise<boolean> {
  tieWorks ??= runTool({ command: TIE[0], args: [...TIE.slice(1), "true"] }).then(
    () => true,
    () => false,
  );
  return tieWorks;
}

interface StartedTools {
  readonly children: readonly ChildProcess[];
  /** Resolves when every process exited 0; rejects with the first failure (or the cause given to `kill`). */
  readonly done: Promise<void>;
  readonly kill: (cause?: Error) => void;
}

function startTools(
  commands: readonly ToolCommand[],
  options: { input?: Readable; signal?: AbortSignal; lastOutput: "pipe" | number },
): StartedTools {
  const input = options.input;
  if (commands.length === 0) throw new Error("spawnPipeline: no commands");
  const children: ChildProcess[] = [];
  const exits: Array<Promise<void>> = [];
  let previous: Readable | undefined = input;

  for (const [index, tool] of commands.entries()) {
    const isLast = index === commands.length - 1;
    const intoFile = isLast && options.lastOutput !== "pipe";
    // Between two tools the bytes go from one process to the next through the pipe itself (the child gets a
    // duplicate of the previous one's stdout; Node stops reading it): a 600 MB uncompressed dump never passes
    // through this process. Only the pipeline's own input and output are streams here.
    const fromTool = children.length > 0 ? previous : undefined;
    const [command, args] = intoFile
      ? [TIE[0], [...TIE.slice(1), tool.command, ...tool.args]]
      : [tool.command, [...tool.args]];
    const pkg = intoFile ? "util-linux" : tool.package;
    const child = spawn(command, args, {
      env: { ...baseEnv(), ...tool.env },
      stdio: [fromTool ?? (previous ? "pipe" : "ignore"), isLast ? options.lastOutput : "pipe", "pipe"],
      ...(tool.owner ? { uid: tool.owner.uid, gid: tool.owner.gid } : {}),
    });
    children.push(child);
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-STDERR_KEEP_BYTES);
      tool.onStderr?.(chunk.toString());
    });
    // This process's copy of the pipe's read end must go, or the writer would not see its reader close (EPIPE).
    if (fromTool) fromTool.destroy();
    if (!fromTool && previous && child.stdin) {
      // EPIPE when a later tool quits early is reported through that tool's exit status, not here.
      child.stdin.on("error", () => undefined);
      previous.on("error", () => child.kill("SIGTERM"));
      previous.pipe(child.stdin);
    }
    exits.push(
      new Promise<void>((resolve, reject) => {
        child.on("error", (error: NodeJS.ErrnoException) => {
          reject(
            error.code === "ENOENT"
              ? new CapsuleError(
                  ErrorCode.ToolMissing,
                  `${command} not found on PATH${pkg ? `: install ${pkg}` : ""}`,
                )
              : error,
          );
        });
        child.on("close", (code, signal) => {
          if (code === 0) return resolve();
          const last = lastMeaningfulLine(stderr);
          reject(
            new CapsuleError(
              ErrorCode.ToolFailed,
              redact(
                `${tool.command} ${signal ? `was killed by ${signal}` : `exited ${code}`}${last ? `: ${last}` : ""}`,
              ),
            ),
          );
        });
      }),
    );
    previous = child.stdout ?? undefined;
  }

  let failFirst: (cause: Error) => void = () => undefined;
  const done = new Promise<void>((resolve, reject) => {
    failFirst = reject;
    firstFailureOrAll(exits).then(resolve, reject);
  });
  done.catch(() => killAll(children));
  options.signal?.addEventListener("abort", () => killAll(children), { once: true });
  return {
    children,
    done,
    kill: (cause) => {
      // A promise settles once: a tool that failed first keeps its place.
      if (cause) failFirst(cause);
      killAll(children);
    },
  };
}

/**
 * Hands the pipeline's output to `upload` and waits for every tool. The first cause wins: when the upload failed, a
 * tool's "terminated by user" is only its casualty; when a tool failed first, the upload's "stream destroyed" is.
 */
export async function uploadOutput<T>(
  pipeline: RunningPipeline,
  upload: (output: Readable) => Promise<T>,
): Promise<T> {
  try {
    const uploaded = await upload(pipeline.output);
    await pipeline.done;
    return uploaded;
  } catch (error) {
    pipeline.kill(error instanceof Error ? error : new Error(String(error)));
    throw await pipeline.done.then(
      () => error,
      (first: unknown) => first,
    );
  }
}

/**
 * The tools as an artifact's producer: the sink reads their output as a stream, or, where this system can tie them
 * to capsule, lets the last one write the sink's file itself.
 */
export async function toolsProducer(
  commands: readonly ToolCommand[],
  signal: AbortSignal,
): Promise<ArtifactProducer> {
  const toStream = <T>(consume: (output: Readable) => Promise<T>) =>
    uploadOutput(spawnPipeline(commands, { signal }), consume);
  if (!(await toolsCanBeTied())) return { toStream };
  return {
    toStream,
    toFile: (fd, stop) => {
      const tools = spawnPipelineIntoFile(commands, fd, { signal });
      stop.addEventListener("abort", () => tools.kill(stop.reason as Error), { once: true });
      return tools.done;
    },
  };
}

/** Runs tools whose output nobody reads (initdb, `tar -x`, `pg_ctl stop`); resolves once every one exited 0. */
export function runToEnd(
  commands: readonly ToolCommand[],
  options: { input?: Readable; signal?: AbortSignal } = {},
): Promise<void> {
  const pipeline = spawnPipeline(commands, options);
  pipeline.output.on("error", () => undefined).resume();
  return pipeline.done;
}

/** Runs one tool to completion and returns its stdout (small outputs only, e.g. `--version`). */
export async function runTool(
  tool: ToolCommand,
  options: { input?: Readable; signal?: AbortSignal } = {},
): Promise<string> {
  const pipeline = spawnPipeline([tool], options);
  const chunks: Buffer[] = [];
  for await (const chunk of pipeline.output) chunks.push(chunk as Buffer);
  await pipeline.done;
  return Buffer.concat(chunks).toString();
}

function firstFailureOrAll(exits: Array<Promise<void>>): Promise<void> {
  return new Promise((resolve, reject) => {
    let pending = exits.length;
    for (const exit of exits) {
      exit.then(() => {
        if (--pending === 0) resolve();
      }, reject);
    }
  });
}

function killAll(children: readonly ChildProcess[]): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  }
}

/** The last non-blank line of a tool's output, trimmed; "" when there is none. */
export function lastMeaningfulLine(stderr: string): string {
  const lines = stderr
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  return lines.at(-1) ?? "";
}

/** Tools get PATH, locale and HOME, not capsule's whole environment (which may hold other secrets). */
function baseEnv(): Record<string, string | undefined> {
  const keep = [
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TZ",
    "TMPDIR",
    "PGSSLMODE",
    "PGSSLROOTCERT",
    "PGCONNECT_TIMEOUT",
  ];
  return Object.fromEntries(keep.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]]));
}
