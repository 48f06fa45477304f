/**
 * The integrity sweep beside a backup that begins while it runs. `--check --yes` deletes what the sweep calls an
 * orphan (a backup folder without a statefile), so the sweep must list the folders before the statefiles: a backup
 * begun in between then shows its statefile too. Listed the other way round, its folder would look orphaned.
 */
import assert from "node:assert/strict";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { describe, test } from "node:test";
import { BackupStore } from "../../src/storage/backup-store.js";
import { sweepIntegrity } from "../../src/storage/integrity.js";
import { openBucket } from "../../src/storage/open-store.js";

describe("integrity sweep beside a backup that begins meanwhile", () => {
  test("GIVEN a backup that begins just as the sweep lists the folders WHEN swept THEN it is listed with its statefile and nothing is an orphan", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "capsule-integrity-race-"));
    const { store: objects, prefix } = openBucket(`file://${dir}`, {}, {});
    const store = new BackupStore(objects, prefix);
    const begin = () =>
      store.begin({
        cluster: "c1",
        target: "db",
        engine: "postgresql",
        trigger: { type: "manual" },
        source: { host: "h" },
        tool: { capsule: "test" },
      });
    const older = await begin();
    await older.uploadArtifact("a.bin", Readable.from([Buffer.from("older")]));
    // The new run writes its statefile and its artifact at the moment the sweep starts listing.
    let begun: string | undefined;
    const listFolders = store.listBackupObjects.bind(store);
    store.listBackupObjects = async (cluster, engine) => {
      const run = await begin();
      await run.uploadArtifact("a.bin", Readable.from([Buffer.from("newer")]));
      begun = run.ref.backupId;
      return listFolders(cluster, engine);
    };
    const { findings, entries } = await sweepIntegrity(store, "c1", "postgresql");
    assert.deepEqual(
      findings.filter((f) => f.kind === "orphan"),
      [],
    );
    assert.ok(begun && entries.some((e) => e.ref.backupId === begun), "the new backup is among the entries");
  });
});
