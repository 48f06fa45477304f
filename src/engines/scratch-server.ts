/**
 * Throwaway database servers for verification drills: a temp directory, a free loopback port, a server process
 * that is always stopped and whose directory is always removed — also when the drill fails. Used only where the
 * server binaries are present (the capsule image ships them; DESIGN §8 / issue 8).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { chown, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { CapsuleError, ErrorCode } from "../errors.js";

export interface ScratchServer {
  readonly dir: string;
  readonly port: number;
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

export async function scratchDir(label: string, owner?: { uid: number; gid: number }): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), `capsule-${label}-`));
  if (owner) await chown(dir, owner.uid, owner.gid);
  return dir;
}

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
}): Promise<ScratchServer> {
  const child: ChildProcess = spawn(options.command, options.args, {
    cwd: options.dir,
    stdio: ["ignore", "pipe", "pipe"],
    ...(options.owner ? { uid: options.owner.uid, gid: options.owner.gid } : {}),
  });
  let output = "";
  const keep = (c: Buffer) => (output = (output + c.toString()).slice(-4096));
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  let spawnError: NodeJS.ErrnoException | undefined;
  child.once("error", (error: NodeJS.ErrnoException) => (spawnError = error));

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(killer);
    }
    await rm(options.dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    if (spawnError) {
      await stop();
      throw spawnError.code === "ENOENT"
        ? new CapsuleError(ErrorCode.ToolMissing, `${options.command} not found: install ${options.package}`)
        : spawnError;
    }
    if (child.exitCode !== null) {
      await stop();
      throw new CapsuleError(
        ErrorCode.ToolFailed,
        `${path.basename(options.command)} exited at start: ${lastLine(output)}`,
      );
    }
    if (await options.ready().catch(() => false)) return { dir: options.dir, port: options.port, stop };
    if (Date.now() > deadline) {
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
  return (
    text
      .split("\n")
      .map((l) => l.trim())
      .filter(Boolean)
      .at(-1) ?? "no output"
  );
}
