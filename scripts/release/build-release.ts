/**
 * `npm run release`: capsule as one self-contained executable for this platform, plus its sha256 file
 * (docs/adr/0008). Bundle (esbuild) → single executable application (node + postject) → checksum.
 */
import { createHash } from "node:crypto";
import { createReadStream, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import type { BuildStamp } from "../../src/build-stamp.js";
import { bundleCli } from "./bundle.js";
import { makeExecutable } from "./sea.js";
import { computeBuildStamp } from "./stamp.js";

export interface Release {
  readonly binary: string;
  /** `<sha256>  <file name>`, as `sha256sum -c` reads it. */
  readonly checksumFile: string;
  readonly sha256: string;
  readonly sizeBytes: number;
  readonly stamp: BuildStamp;
}

const ARCH_NAMES: Record<string, string> = { x64: "x86_64", arm64: "aarch64" };

/** `capsule-0.1.0-linux-x86_64`: the platform is the build machine's, since the binary is a copy of its node. */
export function releaseName(version: string): string {
  return `capsule-${version}-${process.platform}-${ARCH_NAMES[process.arch] ?? process.arch}`;
}

export async function buildRelease(options: { root: string; outDir: string }): Promise<Release> {
  const stamp = computeBuildStamp(options.root);
  mkdirSync(options.outDir, { recursive: true });
  const binary = path.join(options.outDir, releaseName(stamp.version));
  const workDir = mkdtempSync(path.join(tmpdir(), "capsule-release-"));
  try {
    const script = path.join(workDir, "capsule.cjs");
    await bundleCli(options.root, stamp, script);
    // SOURCE_DATE_EPOCH asks for a reproducible build (reproducible-builds.org): then no code cache.
    await makeExecutable({ script, output: binary, workDir, codeCache: !process.env["SOURCE_DATE_EPOCH"] });
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
  const hash = createHash("sha256");
  await pipeline(createReadStream(binary), hash);
  const sha256 = hash.digest("hex");
  const checksumFile = `${binary}.sha256`;
  writeFileSync(checksumFile, `${sha256}  ${path.basename(binary)}\n`);
  return { binary, checksumFile, sha256, sizeBytes: statSync(binary).size, stamp };
}
