/**
 * A prune killed mid-deletion (issue 16's fault matrix, the retention row): a real `capsule pg --prune` process is
 * stopped with SIGKILL or SIGTERM at the instant a backup's artifact is gone but its statefile is not
 * (the `store-delete-before-statefile` failpoint), and then the real bucket on radosgw is inspected. What must hold:
 * the backups the policy keeps are untouched and still whole, the half-deleted one is never offered as restorable,
 * `--check` finds no damage, and the next prune finishes the delete. The same for the WAL a prune deletes after the
 * backups (`wal-delete-between-segments`): stopped between two segment deletes, it leaves no hole — the recovery
 * window of the kept base backups is what it was — and the next prune finishes.
 */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { openBackupStore } from "../../src/runtime/bucket.js";
import type { BackupStore } from "../../src/storage/backup-store.js";
import { layout } from "../../src/storage/layout.js";
import { serializeStatefile } from "../../src/storage/statefile.js";
import type { Statefile } from "../../src/domain/statefile.js";
import { createBucket, s3Env, testServers, uniqueName, type TestServers } from "../harness/index.js";
import { capsule } from "../support/cli.js";
import { startCapsule } from "../support/capsule-process.js";
import { statefile } from "../support/entries.js";
import { objectsOf, prefixOf } from "../support/raw-bucket.js";
import { basesFrom, lsnIn, physicalBackup, putPartial, putSegments, writeHead } from "../support/physical.js";
import { recoveryWindow } from "../../src/domain/wal.js";

async function putBackup(store: BackupStore, s: Statefile): Promise<void> {
  await objectsOf(store).put(layout.artifactKey(prefixOf(store), s, s.artifact!.name), "0123456789");
  await objectsOf(store).put(layout.statefileKey(prefixOf(store), s), serializeStatefile(s));
}

describe("capsule pg --prune killed mid-deletion", () => {
  let servers: TestServers;
  let env: Record<string, string>;
  let store: BackupStore;

  before(async () => {
    servers = await testServers();
    const bucket = uniqueName("prunefault");
    await createBucket(servers.s3, bucket);
    env = { ...s3Env(servers.s3), CAPSULE_BUCKET: `s3://${bucket}/capsule` };
    store = openBackupStore({}, env);
  });

  /** Four backups of one target, a prune keeping two stopped by `signal` at the failpoint; returns what is left. */
  async function interruptedPrune(signal: NodeJS.Signals) {
    const cluster = `prune-${signal.toLowerCase()}`;
    const backups = [1, 2, 3, 4].map((d) =>
      statefile({ cluster, target: "db", at: `2026-11-0${d}T01:00:00.000Z` }),
    );
    for (const s of backups) await putBackup(store, s);
    const e = { ...env, CAPSULE_CLUSTER: cluster };
    const ids = backups.map((s) => s.backupId);
    const run = startCapsule(["pg", "--prune", "--target", "db", "--keep-last", "2", "--yes"], e, {
      failpoints: ["store-delete-before-statefile"],
    });
    await run.waitForStderr(/failpoint store-delete-before-statefile reached/);
    run.signal(signal);
    const exit = await run.exited;
    const entries = await store.list({ cluster, engine: "postgresql" });
    // The two the policy keeps are untouched and whole, whatever stopped the prune.
    for (const id of ids.slice(2)) {
      const entry = entries.find((x) => x.ref.backupId === id);
      assert.equal(entry?.state, "succeeded", `kept backup ${id} is untouched`);
      await store.artifactSource(entry).checkReadable();
    }
    const check = await capsule(["pg", "--check"], e);
    assert.equal(check.code, 0, `--check finds no damage: ${check.stdout}${check.stderr}`);
    return { e, ids, exit, stderr: run.stderr(), entries };
  }

  test("GIVEN four backups and --keep-last 2 WHEN --prune is killed (SIGKILL) between an artifact's delete and its statefile's THEN the two kept are whole, the half-deleted one is never restored, --check finds nothing, and the next prune finishes the delete", async () => {
    const { e, ids, exit, entries } = await interruptedPrune("SIGKILL");
    assert.equal(exit.signal, "SIGKILL");
    const half = entries.filter((x) => x.state === "deleting").map((x) => x.ref.backupId);
    assert.equal(half.length, 1, "one backup is caught mid-delete");
    assert.ok(ids.slice(0, 2).includes(half[0]!), "only a backup the policy lets go is being deleted");

    const restore = await capsule(["pg", "--restore", "--id", half[0]!, "--yes", "--database", "x"], e);
    assert.notEqual(restore.code, 0, "a half-deleted backup is never restored");
    assert.match(restore.stderr, /deleting/);

    const again = await capsule(["pg", "--prune", "--target", "db", "--keep-last", "2", "--yes"], e);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`${half[0]}.*finishing an interrupted delete`));
    const left = (await store.list({ cluster: e.CAPSULE_CLUSTER, engine: "postgresql" })).map(
      (x) => x.ref.backupId,
    );
    assert.deepEqual(left.sort(), ids.slice(2));
  });

  test("GIVEN four backups and --keep-last 2 WHEN --prune is sent SIGTERM in the middle of a backup's delete THEN that delete finishes, the prune stops before the next, exits 143 with one line naming what it deleted, and the next prune deletes the rest", async () => {
    const { e, ids, exit, stderr, entries } = await interruptedPrune("SIGTERM");
    assert.equal(exit.code, 143, stderr);
    assert.deepEqual(
      entries.filter((x) => x.state === "deleting"),
      [],
      "the delete in progress finished: nothing is left half-deleted",
    );
    const gone = ids.slice(0, 2).filter((id) => !entries.some((x) => x.ref.backupId === id));
    assert.equal(gone.length, 1, "exactly the delete in progress happened, the next did not start");
    assert.match(
      stderr,
      new RegExp(`CAPSULE_INTERRUPTED: interrupted by SIGTERM: deleted 1 backup\\(s\\) \\(${gone[0]}\\)`),
    );

    const again = await capsule(["pg", "--prune", "--target", "db", "--keep-last", "2", "--yes"], e);
    assert.equal(again.code, 0, again.stderr);
    const left = (await store.list({ cluster: e.CAPSULE_CLUSTER, engine: "postgresql" })).map(
      (x) => x.ref.backupId,
    );
    assert.deepEqual(left.sort(), ids.slice(2));
  });

  /**
   * Three base backups starting in segments 2, 5 and 9 over WAL 1..12 and a partial 13; a prune keeping two stopped
   * by `signal` after deleting the first of the four segments it lets go. Returns what is left.
   */
  async function interruptedWalPrune(signal: NodeJS.Signals) {
    const cluster = `walprune-${signal.toLowerCase()}`;
    const archive = store.walArchive(cluster, "db");
    await putSegments(archive, 1, 1, 12);
    await putPartial(archive, 1, 13);
    await writeHead(archive, 1, lsnIn(13, 4096));
    const oldest = await physicalBackup(store, { cluster, target: "db", startSegno: 2 });
    const kept = [
      await physicalBackup(store, { cluster, target: "db", startSegno: 5 }),
      await physicalBackup(store, { cluster, target: "db", startSegno: 9 }),
    ];
    const windowBefore = recoveryWindow(basesFrom(kept), await archive.listing());
    assert.ok(windowBefore);
    const e = { ...env, CAPSULE_CLUSTER: cluster };
    const run = startCapsule(["pg", "--prune", "--target", "db", "--keep-last", "2", "--yes"], e, {
      failpoints: ["wal-delete-between-segments"],
    });
    await run.waitForStderr(/failpoint wal-delete-between-segments reached/);
    run.signal(signal);
    const exit = await run.exited;
    const listing = await archive.listing();
    const segnos = listing.segments.map((s) => s.segno);
    assert.deepEqual(
      segnos,
      Array.from({ length: 13 - segnos[0]! + 1 }, (_, i) => segnos[0]! + i),
      "what is left is one run of segments up to the head: no hole",
    );
    assert.deepEqual(recoveryWindow(basesFrom(kept), listing), windowBefore, "the kept backups reach as far");
    const check = await capsule(["pg", "--check"], e);
    assert.equal(check.code, 0, `--check finds no damage: ${check.stdout}${check.stderr}`);
    return { e, exit, stderr: run.stderr(), segnos, oldest, archive };
  }

  async function prunedAgain(e: Record<string, string>, archive: ReturnType<BackupStore["walArchive"]>) {
    const again = await capsule(["pg", "--prune", "--target", "db", "--keep-last", "2", "--yes"], e);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(
      (await archive.listing()).segments.map((s) => s.segno),
      [5, 6, 7, 8, 9, 10, 11, 12, 13],
      "the next prune finishes: the WAL before the oldest kept base backup is gone",
    );
  }

  test("GIVEN base backups and WAL before the oldest kept one WHEN --prune is killed (SIGKILL) between two WAL deletes THEN only the oldest segment is gone, the chain has no hole, the recovery window is unchanged, and the next prune finishes", async () => {
    const { e, exit, segnos, archive } = await interruptedWalPrune("SIGKILL");
    assert.equal(exit.signal, "SIGKILL");
    assert.equal(segnos[0], 2, "segment 1 went first, segment 2 onward is whole");
    await prunedAgain(e, archive);
  });

  test("GIVEN base backups and WAL before the oldest kept one WHEN --prune is sent SIGTERM between two WAL deletes THEN it stops before the next, exits 143 naming what it deleted, leaves no hole, and the next prune finishes", async () => {
    const { e, exit, stderr, segnos, oldest, archive } = await interruptedWalPrune("SIGTERM");
    assert.equal(exit.code, 143, stderr);
    assert.equal(segnos[0], 2, "the delete in progress finished, the next did not start");
    assert.match(
      stderr,
      new RegExp(
        `CAPSULE_INTERRUPTED: interrupted by SIGTERM: deleted 1 backup\\(s\\) \\(${oldest.backupId}\\), each whole, and 1 WAL segment\\(s\\), oldest first`,
      ),
    );
    await prunedAgain(e, archive);
  });
});
