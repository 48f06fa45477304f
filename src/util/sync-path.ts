import { open } from "node:fs/promises";

/** fsync of a file, or of a directory (which makes the names created or renamed in it durable). */
export async function syncPath(file: string): Promise<void> {
  const handle = await open(file, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
