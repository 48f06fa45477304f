import { randomBytes } from "node:crypto";
import { constants, accessSync, createWriteStream, statSync } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { spawnPipeline, type ToolCommand } from "../engines/process-pipeline.js";
import { CapsuleError, ErrorCode } from "../domain/errors.js";
import type { BackupEntry, BackupStore } from "../storage/backup-store.js";

/**
 * Refuses a destination the download could not be written to, before a byte is fetched: an existing directory, a
 * missing parent directory, or one capsule may not write in. `flag` names where the path came from (`--to`).
 */
export function checkDestination(file: string, flag: string): void {
  const target = path.resolve(file);
  const dir = path.dirname(target);
  const fail = (why: string) =>
    new CapsuleError(ErrorCode.LocalFile, `${flag} ${file}: ${why}: name a file in an existing directory`);
  const stat = statSync(target, { throwIfNoEntry: false });
  if (stat?.isDirectory()) throw fail("is a directory");
  const parent = statSync(dir, { throwIfNoEntry: false });
  if (!parent) throw fail(`the directory ${dir} does not exist`);
  if (!parent.isDirectory()) throw fail(`${dir} is not a directory`);
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw fail(`the directory ${dir} is not writable`);
  }
}

/**
 * Writes a backup's artifact to a local file, verified against its recorded sha256, optionally through a decoder
 * (e.g. `zstd -d`, so the file is what the database's own tools read). The file appears under its name only when
 * complete and verified; a mismatch or failure leaves nothing at `file`. Resolves to the bytes written.
 */
export async function downloadArtifact(
  store: BackupStore,
  entry: BackupEntry,
  file: string,
  options: { decode?: ToolCommand; force?: boolean; flag?: string } = {},
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
  checkDestination(file, options.flag ?? "destination");
  // The temporary file is made before the artifact is opened: a destination that cannot be written costs no download.
  const handle = await open(tmp, "wx").catch((error: unknown) => {
    throw localFileError(error, file, options.flag);
  });
  let bytes = 0;
  try {
    const source = await store.openArtifact(entry);
    let inputError: Error | undefined;
    source.on("error", (error) => (inputError = error));
    const decoded = options.decode ? spawnPipeline([options.decode], { input: source }).output : source;
    decoded.on("data", (chunk: Buffer) => (bytes += chunk.length));
    try {
      await pipeline(decoded, createWriteStream("", { fd: handle }));
    } catch (error) {
      throw inputError ?? localFileError(error, file, options.flag);
    }
    if (inputError) throw inputError;
    await rename(tmp, target).catch((error: unknown) => {
      throw localFileError(error, file, options.flag);
    });
    return bytes;
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw error;
  }
}

/** A file-system failure (a full disk, a directory that vanished) as one line naming the file; others unchanged. */
function localFileError(error: unknown, file: string, flag = "destination"): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code !== "string" || !/^E[A-Z]+$/.test(code) || code === "EPIPE") return error;
  return new CapsuleError(ErrorCode.LocalFile, `${flag} ${file}: cannot write (${code})`, { cause: error });
}
