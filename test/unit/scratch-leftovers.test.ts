/**
 * Which `capsule-<label>-*` directories a later run may remove: only provably capsule's and provably abandoned ones.
 * Found by bench/faults: a killed drill's guard and a `--check --yes` racing left a bare directory without its marker,
 * which nothing would ever judge again.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { findScratchLeftovers, removeScratchLeftover } from "../../src/engines/scratch-server.js";

describe("throwaway-server leftovers", () => {
  let root: string;
  /** A PID that was alive once and is not now. */
  let deadPid: number;
  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), "scratch-leftovers-"));
    deadPid = spawnSync("true").pid!;
  });
  after(() => rm(root, { recursive: true, force: true }));

  const make = async (name: string, owner?: number, options: { ageMs?: number; empty?: boolean } = {}) => {
    const dir = path.join(root, `capsule-verify-pg-${name}`);
    await mkdir(dir);
    if (owner !== undefined) await writeFile(path.join(dir, "capsule.owner"), JSON.stringify({ pid: owner }));
    else if (!options.empty) await writeFile(path.join(dir, "PG_VERSION"), "15\n");
    if (options.ageMs) {
      const then = new Date(Date.now() - options.ageMs);
      await utimes(dir, then, then);
    }
    return dir;
  };

  test("GIVEN directories of dead, live and unknown owners WHEN leftovers are looked for THEN only the dead owner's and a stale bare one are named", async () => {
    const dead = await make("dead", deadPid);
    await make("live", process.pid);
    await make("unmarked", undefined, { ageMs: 3_600_000 });
    const bare = await make("bare", undefined, { empty: true, ageMs: 120_000 });
    await make("fresh-bare", undefined, { empty: true });
    const found = (await findScratchLeftovers("verify-pg", root)).map((l) => l.dir).sort();
    assert.deepEqual(found, [bare, dead].sort());
  });

  test("GIVEN a leftover WHEN removed twice at once (a guard and --check racing) THEN both succeed and it is gone", async () => {
    const dir = await make("raced", deadPid);
    for (let i = 0; i < 200; i++) await writeFile(path.join(dir, `f${i}`), "x");
    await Promise.all([removeScratchLeftover({ dir }), removeScratchLeftover({ dir })]);
    assert.deepEqual(
      (await findScratchLeftovers("verify-pg", root)).filter((l) => l.dir === dir),
      [],
    );
  });
});
