import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { spawnPipeline, type ToolCommand } from "../engines/process-pipeline.js";
import { CapsuleError, ErrorCode } from "../errors.js";
import type { BackupEntry, BackupStore } from "../storage/backup-store.js";

/**
 * Writes a backup's artifact to a local file, verified against its recorded sha256, optionally through a decoder
 * (e.g. `zstd -d`, so the file is what the database's own tools read). The file appears under its name only when
 * complete and verified; a mismatch or failure leaves nothing at `file`. Resolves to the bytes written.
 */
export async function downloadArtifact(
  store: BackupStore,
  entry: BackupEntry,
  file: string,
  options: { decode?: ToolCommand; force?: boolean } = {},
): Promise<number> {
  if (entry.state !== "succeeded" && !options.force) {
    throw new CapsuleError(
      ErrorCode.NotRestorable,
      `${entry.ref.backupId} is ${entry.state}, not succeeded: nothing good to download (--force to try anyway)`,
    );
  }
  const target = path.resolve(file);
  const tmp = path.join(
    path.dirname(target),
    `.${path.basename(target)}.capsule-${randomBytes(4).toString("hex")}`,
  );
  let bytes = 0;
  try {
    const source = await store.openArtifact(entry);
    let inputError: Error | undefined;
    source.on("error", (error) => (inputError = error));
    const decoded = options.decode ? spawnPipeline([options.decode], { input: source }).output : source;
    decoded.on("data", (chunk: Buffer) => (bytes += chunk.length));
    try {
      await pipeline(decoded, createWriteStream(tmp, { flags: "wx" }));
    } catch (error) {
      throw inputError ?? error;
    }
    if (inputError) throw inputError;
    await rename(tmp, target);
    return bytes;
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}
