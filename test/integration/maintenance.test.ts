/** `--prune` and `--check` against a real S3 server: retention decisions and the integrity sweep, end to end. */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { openBackupStore } from "../../src/runtime/bucket.js";
import type { BackupStore } from "../../src/storage/backup-store.js";
import { layout } from "../../src/storage/layout.js";
import { serializeStatefile } from "../../src/storage/statefile.js";
import { type Statefile } from "../../src/domain/statefile.js";
import { createBucket, s3Env, testServers, uniqueName } from "../harness/index.js";
import { capsule } from "../support/cli.js";
import { statefile } from "../support/entries.js";
import { objectsOf, prefixOf } from "../support/raw-bucket.js";

async function putBackup(store: BackupStore, s: Statefile, bytes = "0123456789"): Promise<void> {
  if (s.artifact) await objectsOf(store).put(layout.artifactKey(prefixOf(store), s, s.artifact.name), bytes);
  await objectsOf(store).put(layout.statefileKey(prefixOf(store), s), serializeStatefile(s));
}

async function keysUnder(store: BackupStore, prefix: string): Promise<string[]> {
  const keys = [];
  for await (const o of objectsOf(store).list(prefix)) keys.push(o.key);
  return keys;
}

describe("capsule <engine> --prune and --check", () => {
  let env: Record<string, string>;
  let store: BackupStore;

  before(async () => {
    const servers = await testServers();
    const bucket = uniqueName("maint");
    await createBucket(servers.s3, bucket);
    env = { ...s3Env(servers.s3), CAPSULE_BUCKET: `s3://${bucket}/capsule`, CAPSULE_CLUSTER: "maint" };
    store = openBackupStore({}, env);
  });

  test("GIVEN 4 backups of one target and 2 of another WHEN pruned to keep 2 THEN dry-run deletes nothing, the real run deletes the 2 oldest of that target only", async () => {
    const day = (d: number) => `2026-11-${String(d).padStart(2, "0")}T01:00:00.000Z`;
    const db = [20, 21, 22, 23].map((d) => statefile({ cluster: "maint", target: "db", at: day(d) }));
    const other = [20, 21].map((d) => statefile({ cluster: "maint", target: "other", at: day(d) }));
    for (const s of [...db, ...other]) await putBackup(store, s);

    const dry = await capsule(["pg", "--prune", "--target", "db", "--keep-last", "2", "--dry-run"], env);
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal((dry.stdout.match(/would delete/g) ?? []).length, 2);
    assert.match(dry.stdout, new RegExp(`${db[0]!.backupId}.*would delete.*beyond retention`));
    assert.equal((await store.list({ cluster: "maint", engine: "postgresql" })).length, 6);

    const refused = await capsule(["pg", "--prune", "--target", "db", "--keep-last", "2"], env);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /refused: no terminal to confirm on; pass --yes/);

    const pruned = await capsule(
      ["pg", "--prune", "--target", "db", "--keep-last", "2", "--yes", "-o", "json"],
      env,
    );
    assert.equal(pruned.code, 0, pruned.stderr);
    const left = (await store.list({ cluster: "maint", engine: "postgresql" }))
      .map((e) => e.ref.backupId)
      .sort();
    assert.deepEqual(left, [db[2]!, db[3]!, ...other].map((s) => s.backupId).sort());
    for (const gone of db.slice(0, 2))
      assert.deepEqual(await keysUnder(store, layout.backupPrefix(prefixOf(store), gone)), []);
  });

  test("GIVEN a bad --keep-last WHEN pruning THEN one line names the flag", async () => {
    const result = await capsule(["pg", "--prune", "--keep-last", "0", "--dry-run"], env);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--keep-last must be an integer >= 1 \(got "0"\)/);
  });

  test("GIVEN each kind of damage WHEN checked THEN each is found; --yes deletes only the orphans", async () => {
    const cluster = "damaged";
    const e = { ...env, CAPSULE_CLUSTER: cluster };
    const healthy = statefile({ cluster, engine: "redis", at: "2026-11-20T00:00:00.000Z" });
    const missing = statefile({ cluster, engine: "redis", at: "2026-11-21T00:00:00.000Z" });
    const resized = statefile({ cluster, engine: "redis", at: "2026-11-22T00:00:00.000Z" });
    for (const s of [healthy, missing, resized]) await putBackup(store, s);
    await objectsOf(store).delete(layout.artifactKey(prefixOf(store), missing, missing.artifact!.name));
    await objectsOf(store).put(layout.artifactKey(prefixOf(store), resized, resized.artifact!.name), "short");
    const corruptRef = { cluster, engine: "redis" as const, backupId: "redis-20261123T000000Z-c0c0c0" };
    await objectsOf(store).put(layout.statefileKey(prefixOf(store), corruptRef), "{ not json");
    const orphanRef = { cluster, engine: "redis" as const, backupId: "redis-20261124T000000Z-0e0e0e" };
    await objectsOf(store).put(layout.artifactKey(prefixOf(store), orphanRef, "dump.rdb"), "left behind");

    const found = await capsule(["redis", "--check", "-o", "json"], e);
    assert.equal(found.code, 1);
    const kinds = (JSON.parse(found.stdout) as Array<{ kind: string; backupId: string }>)
      .map((f) => `${f.kind} ${f.backupId}`)
      .sort();
    assert.deepEqual(kinds, [
      `corrupt-statefile ${corruptRef.backupId}`,
      `missing-artifact ${missing.backupId}`,
      `orphan ${orphanRef.backupId}`,
      `size-mismatch ${resized.backupId}`,
    ]);

    const cleaned = await capsule(["redis", "--check", "--yes"], e);
    assert.equal(cleaned.code, 1, "the damage that is not an orphan remains");
    assert.match(cleaned.stderr, /deleted 1 orphaned object/);
    assert.deepEqual(await keysUnder(store, layout.backupPrefix(prefixOf(store), orphanRef)), []);
    assert.ok(
      (await keysUnder(store, layout.backupPrefix(prefixOf(store), healthy))).length === 2,
      "healthy backup untouched",
    );
  });
});
