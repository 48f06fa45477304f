import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dirname, "..", "..");

/**
 * Compiles src/ and bench/ to plain JavaScript under .tmp/bench-build, so measured processes run what ships —
 * not under a TypeScript loader that adds its own memory and start-up time. Returns the output directory.
 */
export function buildForBench(): string {
  const out = join(ROOT, ".tmp", "bench-build");
  rmSync(out, { recursive: true, force: true });
  const tsc = spawnSync(
    join(ROOT, "node_modules", ".bin", "tsc"),
    ["-p", join(ROOT, "tsconfig.json"), "--outDir", out],
    {
      encoding: "utf8",
    },
  );
  // tsc emits despite type errors elsewhere in the tree; a bench needs the JavaScript, so only a missing output fails.
  if (tsc.status !== 0 && !existsSync(join(out, "src", "cli.js")))
    throw new Error(`tsc failed:\n${tsc.stdout}${tsc.stderr}`);
  return out;
}

/**
 * A preload that prints the process' own peak RSS on exit (`BENCH_RSS_KB=…` on stderr): `node --import <it> …`.
 * Needs no /usr/bin/time, and measures only the node process it is loaded into.
 */
export function rusagePreload(build: string): string {
  const file = join(build, "rusage.mjs");
  writeFileSync(
    file,
    `process.on("exit", () => process.stderr.write("BENCH_RSS_KB=" + process.resourceUsage().maxRSS + "\\n"));\n`,
  );
  return file;
}

/** An older capsule compiled from `rev`, beside this one. */
export function buildRevision(rev: string): string {
  const dir = join(ROOT, ".tmp", "bench-before");
  if (existsSync(dir)) execFileSync("git", ["worktree", "remove", "--force", dir], { cwd: ROOT });
  execFileSync("git", ["worktree", "add", "--detach", dir, rev], { cwd: ROOT, stdio: "ignore" });
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  const out = join(dir, ".out");
  // As buildForBench: tsc emits despite type errors elsewhere; only a missing output fails.
  spawnSync(join(ROOT, "node_modules", ".bin", "tsc"), ["-p", join(dir, "tsconfig.json"), "--outDir", out]);
  if (!existsSync(join(out, "src", "cli.js"))) throw new Error(`could not build ${rev}`);
  return out;
}

/** Removes what buildRevision added. */
export function removeRevision(): void {
  execFileSync("git", ["worktree", "remove", "--force", join(ROOT, ".tmp", "bench-before")], { cwd: ROOT });
}

/**
 * The command that runs the CLI compiled into `dir` as an installed `capsule` runs: the file itself, so its shebang's
 * Node flags (src/cli.ts) apply as they do in the image and from npm.
 */
export function installedCli(dir: string): string {
  const cli = join(dir, "src", "cli.js");
  chmodSync(cli, 0o755);
  return cli;
}
