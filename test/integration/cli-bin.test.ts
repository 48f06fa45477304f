/** The `capsule` binary as users run it: the built output, and through npx. */
import assert from "node:assert/strict";
import { capsule } from "../support/cli.js";
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { describe, test } from "node:test";
import { layout } from "../../src/storage/layout.js";
import { openBucket } from "../../src/storage/open-store.js";
import { serializeStatefile } from "../../src/storage/statefile.js";
import { statefile } from "../support/entries.js";

const exec = promisify(execFile);
const root = path.resolve(import.meta.dirname, "..", "..");
const built = path.join(root, "dist", "src", "cli.js");

describe("the capsule binary", () => {
  test("GIVEN the built output WHEN run with --help and version THEN both answer", async () => {
    assert.ok(existsSync(built), `${built} is missing: run npm run build first (.ci/run does)`);
    const help = await exec(process.execPath, [built, "--help"], { cwd: root });
    for (const command of [
      "capsule pg",
      "capsule redis",
      "capsule es",
      "capsule plan",
      "capsule run",
      "capsule version",
    ]) {
      assert.match(help.stdout, new RegExp(command), `--help lists ${command}`);
    }
    const version = await exec(process.execPath, [built, "version", "-o", "json"], { cwd: root });
    const info = JSON.parse(version.stdout) as { version: string; commit: string; date: string };
    const pkg = (await import(path.join(root, "package.json"), { with: { type: "json" } })) as {
      default: { version: string };
    };
    assert.equal(info.version, pkg.default.version);
    // npm run build stamps dist/src/build-stamp.json; only a source tree says "dev".
    assert.match(info.commit, /^([0-9a-f]{12}(-dirty)?|unknown)$/);
    assert.match(info.date, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  test("GIVEN the package WHEN run through npx THEN capsule version answers", async () => {
    const { stdout } = await exec("npx", ["--no-install", ".", "version"], { cwd: root });
    assert.match(stdout, /^capsule \d+\.\d+\.\d+ /);
  });

  test("GIVEN an unknown flag WHEN run THEN the error goes to stderr with a non-zero exit and stdout stays empty", async () => {
    await assert.rejects(
      exec(process.execPath, [built, "pg", "--bogus"], { cwd: root }),
      (error: { code: number; stdout: string; stderr: string }) => {
        assert.equal(error.code, 2);
        assert.equal(error.stdout, "");
        assert.match(error.stderr, /Unsupported option name \("--bogus"\)/);
        return true;
      },
    );
  });

  test("GIVEN bad flags, values and commands WHEN parsed THEN each is one plain line on stderr naming it and where help is", async () => {
    const cases: Array<[string[], RegExp]> = [
      [
        ["pg", "--bogus"],
        /^capsule: CAPSULE_USAGE: Unsupported option name \("--bogus"\)\. \(see: capsule pg --help\)\n$/,
      ],
      [
        ["pg", "--list", "-o", "xml"],
        /^capsule: CAPSULE_USAGE: Invalid value for -o: .*\(got "xml"\) \(see: capsule pg --help\)\n$/,
      ],
      [["bogus"], /^capsule: CAPSULE_USAGE: unknown command "bogus" \(see: capsule --help\)\n$/],
    ];
    for (const [args, expected] of cases) {
      const result = await capsule(args);
      assert.equal(result.code, 2, args.join(" "));
      assert.equal(result.stdout, "");
      assert.match(result.stderr, expected);
    }
  });

  test("GIVEN a reader that stops early (| head) WHEN --list prints more than a pipe holds THEN capsule finishes quietly, exit 0", async () => {
    const url = await bucketOfStatefiles("capsule-epipe-", 300);
    const { code, stderr } = await readFirstChunkOnly([
      "pg",
      "--list",
      "-o",
      "json",
      "--bucket",
      url,
      "--cluster",
      "ns.app",
    ]);
    assert.equal(stderr, "", "no stack trace, no EPIPE");
    assert.equal(code, 0);
  });

  test("GIVEN a reader that stops early WHEN --check -o json prints many findings THEN capsule still exits 1 for the damage", async () => {
    // Succeeded backups whose artifacts were never written: one missing-artifact finding each.
    const url = await bucketOfStatefiles("capsule-epipe-check-", 1500);
    const { code, stderr } = await readFirstChunkOnly([
      "pg",
      "--check",
      "-o",
      "json",
      "--bucket",
      url,
      "--cluster",
      "ns.app",
    ]);
    assert.doesNotMatch(stderr, /EPIPE|Error|at /, "no stack trace");
    assert.equal(code, 1, `exit ${code}; stderr: ${stderr}`);
  });
});

/** A file:// bucket holding `count` succeeded statefiles of cluster ns.app (and no artifacts). */
async function bucketOfStatefiles(name: string, count: number): Promise<string> {
  const url = `file://${mkdtempSync(path.join(tmpdir(), name))}`;
  const { store, prefix } = openBucket(url, {}, {});
  for (let i = 0; i < count; i++) {
    const entry = statefile({ cluster: "ns.app", at: new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString() });
    await store.put(layout.statefileKey(prefix, entry), serializeStatefile(entry));
  }
  return url;
}

/** Runs the built binary and, as `head -c` does, closes its stdout after the first chunk; its exit code and stderr. */
async function readFirstChunkOnly(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [built, ...args], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
  child.stdout.destroy();
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  return { code, stderr };
}
