/** Files on disk as the tests see them, below any store's own listing (temp and lock files included). */
import { readdir } from "node:fs/promises";
import path from "node:path";

/** The path of every file under `dir`, at any depth, sorted. */
export async function filesUnder(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile())
    .map((entry) => path.join(entry.parentPath, entry.name))
    .sort();
}
