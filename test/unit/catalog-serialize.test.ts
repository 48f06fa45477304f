/**
 * The catalog's bytes (storage/catalog.ts): written entry by entry into gzip, they must read back as the same
 * catalog, and be the one JSON document (sorted by backup id) that older capsules wrote and read.
 */
import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import { describe, test } from "node:test";
import { parseCatalog, serializeCatalog, type CatalogEntry } from "../../src/storage/catalog.js";
import { statefile } from "../support/entries.js";

const CLUSTER = "cnvrg.app";

function catalogOf(count: number) {
  const entries = new Map<string, CatalogEntry>();
  for (let i = count - 1; i >= 0; i--) {
    const s = statefile({
      cluster: CLUSTER,
      target: "db",
      engine: "postgresql",
      at: new Date(Date.UTC(2025, 0, 1) + i * 60_000).toISOString(),
    });
    entries.set(
      s.backupId,
      i % 10 === 3
        ? { etag: `"e${i}"`, size: i, problem: "unreadable: line\n2" }
        : { etag: `"e${i}"`, size: i, statefile: s },
    );
  }
  return { cluster: CLUSTER, engine: "postgresql" as const, entries };
}

describe("catalog bytes", () => {
  for (const count of [0, 1, 2000]) {
    test(`GIVEN a catalog of ${count} entries WHEN serialized THEN it parses back to the same entries, as one sorted JSON document`, async () => {
      const catalog = catalogOf(count);
      const bytes = await serializeCatalog(catalog);
      const back = parseCatalog(bytes, CLUSTER, "postgresql");
      assert.ok(back, "the catalog did not parse back");
      assert.deepEqual([...back.entries].sort(), [...catalog.entries].sort());
      const sorted = [...catalog.entries].sort(([a], [b]) => (a < b ? -1 : 1));
      assert.equal(
        gunzipSync(bytes).toString(),
        JSON.stringify({
          catalogVersion: 1,
          cluster: CLUSTER,
          engine: "postgresql",
          entries: Object.fromEntries(sorted),
        }),
      );
    });
  }
});
