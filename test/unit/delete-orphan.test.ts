/** `deleteOrphan` deletes what the integrity sweep found and nothing a backup still owns, on a real directory store. */
import assert from "node:assert/strict";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { before, describe, test } from "node:test";
import { BackupStore } from "../../src/storage/backup-store.js";
import { FileObjectStore } from "../../src/storage/file-object-store.js";
import { layout } from "../../src/storage/layout.js";
import { serializeStatefile } from "../../src/storage/statefile.js";
import { statefile } from "../support/entries.js";

describe("BackupStore.deleteOrphan", () => {
  let objects: FileObjectStore;
  let store: BackupStore;
  const done = statefile({ cluster: "c", engine: "redis", at: "2026-11-20T00:00:00.000Z" });
  const running = statefile({
    cluster: "c",
    engine: "redis",
    status: "running",
    at: "2026-11-21T00:00:00.000Z",
  });
  const orphan = { cluster: "c", engine: "redis" as const, backupId: "redis-20261122T000000Z-0e0e0e" };

  before(async () => {
    objects = new FileObjectStore(await mkdtemp(path.join(tmpdir(), "capsule-orphan-")));
    store = new BackupStore(objects, "capsule", { now: () => new Date("2026-11-21T00:00:01.000Z") });
    for (const s of [done, running])
      await objects.put(layout.statefileKey("capsule", s), serializeStatefile(s));
    await objects.put(layout.artifactKey("capsule", done, done.artifact!.name), "0123456789");
    await objects.put(layout.artifactKey("capsule", done, "extra.bin"), "stray");
    await objects.put(layout.artifactKey("capsule", running, "dump.rdb"), "in flight");
    await objects.put(layout.artifactKey("capsule", orphan, "dump.rdb"), "left behind");
  });

  test("GIVEN an object in a folder without a statefile WHEN deleted as an orphan THEN it is gone", async () => {
    const key = layout.artifactKey("capsule", orphan, "dump.rdb");
    await store.deleteOrphan(key);
    assert.equal(await objects.head(key), undefined);
  });

  test("GIVEN keys a backup owns or outside the backup folders WHEN deleted as orphans THEN each is refused and kept", async () => {
    const refused: Array<[string, RegExp]> = [
      [layout.statefileKey("capsule", done), /is the statefile of/],
      [layout.artifactKey("capsule", done, done.artifact!.name), /is the artifact of/],
      [layout.artifactKey("capsule", running, "dump.rdb"), /is still running/],
      [layout.requestKey("capsule", "c", "req-1"), /not in a backup folder/],
      ["elsewhere/c/redis/x/dump.rdb", /not under this store's prefix/],
    ];
    for (const [key, why] of refused) {
      if (!(await objects.head(key))) await objects.put(key, "kept");
      await assert.rejects(store.deleteOrphan(key), { code: "CAPSULE_REFUSED", message: why });
      assert.ok(await objects.head(key), `${key} kept`);
    }
  });

  test("GIVEN a stray object beside a finished backup's artifact WHEN deleted as an orphan THEN it is deleted", async () => {
    const key = layout.artifactKey("capsule", done, "extra.bin");
    await store.deleteOrphan(key);
    assert.equal(await objects.head(key), undefined);
  });
});
