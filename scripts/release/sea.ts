/**
 * A Node.js single executable application (https://nodejs.org/docs/latest-v24.x/api/single-executable-applications.html):
 * a copy of the node binary with the bundled script injected as the NODE_SEA_BLOB resource by postject.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { inject } from "postject";

/** The fuse node checks at start-up; postject flips it so node runs the blob instead of its usual CLI. */
const SEA_FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";

export interface BlobOptions {
  /** The CommonJS script to run; it must lie inside `workDir`. */
  readonly script: string;
  /** A directory for the blob and its config. */
  readonly workDir: string;
  /**
   * Embed V8's compiled code for the script, made by this same node: start-up skips most parsing (80 ms instead of
   * 140 ms of CPU for `capsule version`), but V8's cache differs from run to run, so the binary is not reproducible.
   */
  readonly codeCache: boolean;
}

/** Injects the script into a copy of the running node at `output`. */
export async function makeExecutable(options: BlobOptions & { readonly output: string }): Promise<void> {
  const blob = seaBlob(options);
  copyFileSync(process.execPath, options.output);
  chmodSync(options.output, 0o755);
  await quietly(() =>
    inject(options.output, "NODE_SEA_BLOB", readFileSync(blob), { sentinelFuse: SEA_FUSE }),
  );
}

/**
 * postject's ELF library warns about every note section of node's binary it cannot name ("Can't find string offset
 * for section name '.note.100'"), which is harmless; it prints through the console.warn it finds while loading, so
 * that is the only place to drop those lines. Every other warning still shows.
 */
async function quietly<T>(work: () => Promise<T>): Promise<T> {
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (!/^warning: Can't find string offset for section name/.test(String(args[0]))) warn(...args);
  };
  try {
    return await work();
  } finally {
    console.warn = warn;
  }
}

/** `node --experimental-sea-config`: the script (and its code cache) as the blob node runs; returns its path. */
export function seaBlob(options: BlobOptions): string {
  // The running node is the base binary: the blob (with its code cache) is only valid for the node that made it.
  const node = process.execPath;
  // A node linked against a shared libnode (some distribution packages) would need that library at run time.
  if ((process.config.variables as { node_shared?: boolean }).node_shared)
    throw new Error(
      `${node} is linked against a shared libnode; build the release with an official Node.js binary`,
    );
  const blob = path.join(options.workDir, "capsule.blob");
  const config = path.join(options.workDir, "sea-config.json");
  writeFileSync(
    config,
    JSON.stringify({
      // Relative: the blob records the script's path, and a random temp dir in it would make every build differ.
      main: path.relative(options.workDir, options.script),
      output: path.basename(blob),
      // The one-line-error contract: nothing on stderr that capsule did not write.
      disableExperimentalSEAWarning: true,
      useSnapshot: false,
      useCodeCache: options.codeCache,
    }),
  );
  const made = spawnSync(node, ["--experimental-sea-config", config], {
    cwd: options.workDir,
    encoding: "utf8",
  });
  if (made.status !== 0)
    throw new Error(`${node} --experimental-sea-config failed: ${(made.stderr || made.stdout).trim()}`);
  return blob;
}
