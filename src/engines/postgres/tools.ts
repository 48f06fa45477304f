/**
 * The external tools of the PostgreSQL engine and the rules for choosing them: pg_dump must be at least as new
 * as the server it dumps (an older one refuses or, worse, misses features), and the compressor is zstd.
 */
import { CapsuleError, ErrorCode } from "../../domain/errors.js";
import { runTool, type ToolCommand } from "../process-pipeline.js";

export const CLIENT_PACKAGE = "postgresql-client";

export async function pgToolVersion(
  tool: "pg_dump" | "pg_restore" | "pg_basebackup",
): Promise<{ text: string; major: number }> {
  const out = await runTool({ command: tool, args: ["--version"], package: CLIENT_PACKAGE });
  const match = /(\d+)(?:\.(\d+))?/.exec(out);
  if (!match)
    throw new CapsuleError(ErrorCode.ToolFailed, `${tool} --version printed no version: ${out.trim()}`);
  return { text: match[0], major: Number(match[1]) };
}

export async function zstdVersion(): Promise<string> {
  const out = await runTool({ command: "zstd", args: ["--version"], package: "zstd" });
  return /v(\d+\.\d+\.\d+)/.exec(out)?.[1] ?? out.trim();
}

/** Fails at once, with the fix, when the client tool is older than the server. */
export function assertClientCanDump(tool: string, clientMajor: number, serverVersionNum: number): void {
  const serverMajor = Math.floor(serverVersionNum / 10_000);
  if (clientMajor < serverMajor) {
    throw new CapsuleError(
      ErrorCode.ToolMissing,
      `${tool} ${clientMajor} cannot dump PostgreSQL ${serverMajor}: install postgresql-client-${serverMajor} ` +
        `(or newer) and put it first on PATH`,
    );
  }
}

/** zstd settings: level 3 is zstd's default and beats zlib -6 on both speed and size for typical dumps. */
export interface Compression {
  readonly level: number;
  /** Worker threads; 0 means one per core. */
  readonly threads: number;
}

export const DEFAULT_COMPRESSION: Compression = { level: 3, threads: 0 };

export function zstdCompress(c: Compression): ToolCommand {
  return {
    command: "zstd",
    args: [`-${c.level}`, `-T${c.threads}`, "-q", "-c", "--no-progress"],
    package: "zstd",
  };
}

export function zstdDecompress(): ToolCommand {
  return { command: "zstd", args: ["-d", "-q", "-c", "--no-progress"], package: "zstd" };
}
