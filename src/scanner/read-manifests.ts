/**
 * CnvrgApp manifests from files and folders (the scanner's file input; the cluster input is k8s/cnvrgapps.ts).
 * Folders are read recursively in name order; YAML may hold many documents, and `kind: List`/`CnvrgAppList`
 * documents (what `kubectl get -o yaml` prints) are unpacked. Documents of other kinds, such as Secrets, are ignored.
 */
import { readFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import yaml from "js-yaml";
import { CapsuleError, ErrorCode } from "../domain/errors.js";
import { isCnvrgApp } from "../domain/cnvrgapp.js";

const MANIFEST_FILE = /\.(ya?ml|json)$/;

/** Files read at once: one at a time leaves the process idle on the file system (a quarter of the time for 2,000). */
const READ_CONCURRENCY = 32;

export async function readCnvrgApps(paths: readonly string[]): Promise<unknown[]> {
  const files: string[] = [];
  for (const path of paths) files.push(...(await manifestFiles(path)));
  const apps: unknown[] = [];
  for (let i = 0; i < files.length; i += READ_CONCURRENCY) {
    const batch = files.slice(i, i + READ_CONCURRENCY);
    const texts = await Promise.all(batch.map((file) => readFile(file, "utf8")));
    texts.forEach((text, j) => apps.push(...parseCnvrgApps(text, batch[j]!)));
  }
  return apps;
}

/** The CnvrgApps in one file's text; pure. */
export function parseCnvrgApps(text: string, file: string): unknown[] {
  let documents: unknown[];
  try {
    documents = yaml.loadAll(text);
  } catch (error) {
    throw new CapsuleError(
      ErrorCode.Config,
      `${file}: invalid YAML: ${(error as Error).message.split("\n")[0]}`,
    );
  }
  return documents.flatMap(unpackList).filter(isCnvrgApp);
}

function unpackList(document: unknown): unknown[] {
  if (document === null || typeof document !== "object") return [];
  const { kind, items } = document as { kind?: unknown; items?: unknown };
  if (typeof kind === "string" && kind.endsWith("List") && Array.isArray(items)) return items as unknown[];
  return [document];
}

async function manifestFiles(path: string): Promise<string[]> {
  let info;
  try {
    info = await stat(path);
  } catch {
    throw new CapsuleError(ErrorCode.Config, `${path}: no such file or directory`);
  }
  if (!info.isDirectory()) return [path];
  const files: string[] = [];
  for (const entry of (await readdir(path, { withFileTypes: true })).sort((a, b) =>
    a.name < b.name ? -1 : 1,
  )) {
    const full = join(path, entry.name);
    if (entry.isDirectory()) files.push(...(await manifestFiles(full)));
    else if (MANIFEST_FILE.test(entry.name)) files.push(full);
  }
  return files;
}
