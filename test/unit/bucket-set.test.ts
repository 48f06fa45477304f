import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { BackupStore } from "../../src/storage/backup-store.js";
import { BucketSet } from "../../src/storage/bucket-set.js";
import { FileObjectStore } from "../../src/storage/file-object-store.js";

const store = (name: string) => new BackupStore(new FileObjectStore(`/nonexistent/${name}`), "capsule");

describe("BucketSet: which bucket holds which cluster", () => {
  test("GIVEN targets in two buckets and a default WHEN asked THEN each cluster maps to its targets' buckets, the default to the rest", () => {
    const fallback = store("default");
    const set = new BucketSet(fallback);
    let opened = 0;
    const open = (name: string) => () => (opened++, store(name));
    set.setTargets([
      { cluster: "a.app", target: "pg", key: "bucket-a", open: open("a") },
      { cluster: "a.app", target: "redis", key: "bucket-a", open: open("a-again") },
      { cluster: "b.app", target: "pg", key: "bucket-b", open: open("b") },
    ]);
    assert.equal(opened, 2, "one store per bucket identity");
    assert.equal(set.stores().length, 3);
    assert.equal(set.stores()[0], fallback, "the default first");
    const [a] = set.storesOf("a.app");
    assert.ok(a && a !== fallback);
    assert.equal(set.storeFor("a.app", "redis"), a);
    assert.deepEqual(set.storesOf("other.app"), [fallback]);
    assert.deepEqual(set.clustersOf(a), ["a.app"]);

    // The same identities again: the stores (and their statefile caches) are kept.
    set.setTargets([{ cluster: "a.app", target: "pg", key: "bucket-a", open: open("a2") }]);
    assert.equal(opened, 2);
    assert.equal(set.storeFor("a.app", "pg"), a);
    assert.equal(set.stores().length, 2, "bucket-b is no longer used: dropped");
  });

  test("GIVEN a target that cannot be resolved this time WHEN kept THEN its last bucket stays; an unknown one gets none", () => {
    const set = new BucketSet();
    set.setTargets([{ cluster: "a.app", target: "pg", key: "bucket-a", open: () => store("a") }]);
    const a = set.storeFor("a.app", "pg");
    set.setTargets(
      [],
      [
        { cluster: "a.app", target: "pg" },
        { cluster: "new.app", target: "pg" },
      ],
    );
    assert.equal(set.storeFor("a.app", "pg"), a);
    assert.deepEqual(set.storesOf("new.app"), []);
    set.setTargets([]);
    assert.ok(set.isEmpty);
  });

  test("GIVEN clusters found in a bucket WHEN recorded THEN they are read there too, beside their targets' buckets", () => {
    const fallback = store("default");
    const set = new BucketSet(fallback);
    set.setTargets([{ cluster: "a.app", target: "pg", key: "bucket-a", open: () => store("a") }]);
    const a = set.storeFor("a.app", "pg")!;
    set.setFound(
      new Map([
        [fallback, ["a.app", "gone.app"]],
        [a, ["a.app"]],
      ]),
    );
    assert.deepEqual(new Set(set.storesOf("a.app")), new Set([a, fallback]));
    assert.deepEqual(set.storesOf("gone.app"), [fallback]);
    assert.deepEqual(set.clusters(), ["a.app", "gone.app"]);
  });
});
