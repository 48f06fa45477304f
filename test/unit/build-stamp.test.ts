/** Version stamping: what a source tree reports, and what a build computes from its checkout. */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import { computeBuildStamp } from "../../scripts/release/stamp.js";
import { capsule } from "../support/cli.js";

const root = path.resolve(import.meta.dirname, "..", "..");
const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { version: string };

describe("build stamp", () => {
  test("GIVEN a source tree WHEN capsule version -o json THEN the package version with commit and date dev", async () => {
    const result = await capsule(["version", "-o", "json"]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), {
      version: pkg.version,
      commit: "dev",
      date: "dev",
      node: process.version,
    });
  });

  test("GIVEN this git checkout WHEN stamped THEN the commit is HEAD's short hash, -dirty when tracked files changed", () => {
    const head = execFileSync("git", ["rev-parse", "--short=12", "HEAD"], {
      cwd: root,
      encoding: "utf8",
    }).trim();
    const dirty =
      execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], {
        cwd: root,
        encoding: "utf8",
      }) !== "";
    const stamp = computeBuildStamp(root, {});
    assert.equal(stamp.version, pkg.version);
    assert.equal(stamp.commit, dirty ? `${head}-dirty` : head);
    assert.match(stamp.date, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  test("GIVEN SOURCE_DATE_EPOCH and CAPSULE_BUILD_COMMIT WHEN stamped THEN both are used, so rebuilds are reproducible", () => {
    const env = { SOURCE_DATE_EPOCH: "1764000000", CAPSULE_BUILD_COMMIT: "0123456789ab" };
    assert.deepEqual(computeBuildStamp(root, env), {
      version: pkg.version,
      commit: "0123456789ab",
      date: "2025-11-24T16:00:00Z",
    });
    assert.throws(() => computeBuildStamp(root, { SOURCE_DATE_EPOCH: "yesterday" }), /SOURCE_DATE_EPOCH/);
  });

  test("GIVEN a directory that is no git checkout WHEN stamped THEN the commit is unknown", () => {
    // The package tarball has package.json but no .git.
    const dir = mkdtempSync(path.join(tmpdir(), "capsule-stamp-"));
    try {
      copyFileSync(path.join(root, "package.json"), path.join(dir, "package.json"));
      assert.equal(computeBuildStamp(dir, {}).commit, "unknown");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
