import { createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { randomBytes } from "node:crypto";
import type { BackupEntry, BackupStore } from "../storage/backup-store.js";
import { CapsuleError, ErrorCode } from "../errors.js";

/**
 * Writes a backup's artifact to a local file, verified against its recorded sha256. The file appears under its
 * name only when complete and verified; a mismatch or failure leaves nothing at `file`.
 */
export async function downloadArtifact(
  store: BackupStore,
  entry: BackupEntry,
  file: string,
): Promise<number> {
  if (entry.state !== "succeeded") {
    throw new CapsuleError(
      ErrorCode.NotRestorable,
      `${entry.ref.backupId} is ${entry.state}, not succeeded: nothing good to download`,
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
    source.on("data", (chunk: Buffer) => (bytes += chunk.length));
    await pipeline(source, createWriteStream(tmp, { flags: "wx" }));
    await rename(tmp, target);
    return bytes;
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}
