/**
 * The build stamp (version, commit, date) of a checkout, computed at build time so that a binary can say where it
 * came from without git, package.json or a network at run time.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import type { BuildStamp } from "../../src/build-stamp.js";

/**
 * The stamp of the checkout at `root`. Commit: `$CAPSULE_BUILD_COMMIT` if set (builds from a tarball), else the
 * short HEAD hash with "-dirty" when tracked files differ from it, else "unknown" (no git). Date: from
 * `$SOURCE_DATE_EPOCH` when set, so a rebuild of the same commit is byte-identical, else now.
 */
export function computeBuildStamp(root: string, env: NodeJS.ProcessEnv = process.env): BuildStamp {
  const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { version: string };
  return {
    version: pkg.version,
    commit: env["CAPSULE_BUILD_COMMIT"] || gitCommit(root),
    date: buildDate(env),
  };
}

function gitCommit(root: string): string {
  const git = (...args: string[]) =>
    execFileSync("git", args, { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  try {
    const head = git("rev-parse", "--short=12", "HEAD");
    return git("status", "--porcelain", "--untracked-files=no") === "" ? head : `${head}-dirty`;
  } catch {
    return "unknown";
  }
}

function buildDate(env: NodeJS.ProcessEnv): string {
  const epoch = env["SOURCE_DATE_EPOCH"];
  const date = epoch ? new Date(Number(epoch) * 1000) : new Date();
  if (Number.isNaN(date.getTime())) throw new Error(`SOURCE_DATE_EPOCH must be Unix seconds (got ${epoch})`);
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}
