/**
 * The status API while the bucket is slow (issue 20), over a real radosgw bucket: a backup list pages with a cursor
 * that survives deletes, a slow bucket is answered with the last list read (marked stale, with its age), and with
 * nothing read yet a 503 says when to retry — never a bare 503.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { BackupStore } from "../../src/storage/backup-store.js";
import { layout } from "../../src/storage/layout.js";
import type { ObjectStore } from "../../src/storage/object-store.js";
import { openBucket } from "../../src/storage/open-store.js";
import { serializeStatefile } from "../../src/storage/statefile.js";
import { DaemonMetrics } from "../../src/status/metrics.js";
import { StatusServer } from "../../src/status/server.js";
import type { Statefile } from "../../src/domain/statefile.js";
import { capturedLogger } from "../fakes/kube-clients.js";
import { createBucket, s3Env, testServers, uniqueName } from "../harness/index.js";
import { statefile } from "../support/entries.js";

const CLUSTER = "warm.app";

/** The bucket behind a gate: while closed, listings wait — a bucket still being read, as at a daemon's start. */
function gated(objects: ObjectStore) {
  let open = true;
  let waiting: Array<() => void> = [];
  const store: ObjectStore = {
    ...objects,
    description: objects.description,
    put: (...args) => objects.put(...args),
    get: (key) => objects.get(key),
    getWithEtag: (key) => objects.getWithEtag(key),
    head: (key) => objects.head(key),
    delete: (key) => objects.delete(key),
    check: () => objects.check(),
    async *list(prefix, options) {
      if (!open) await new Promise<void>((resolve) => waiting.push(resolve));
      yield* objects.list(prefix, options);
    },
  };
  return {
    store,
    close: () => (open = false),
    open: () => {
      open = true;
      for (const resolve of waiting) resolve();
      waiting = [];
    },
  };
}

describe("status API paging and warm-up (radosgw)", () => {
  let objects: ObjectStore;
  let prefix: string;
  let gate: ReturnType<typeof gated>;
  let server: StatusServer;
  let base: string;
  const written: Statefile[] = [];

  before(async () => {
    const servers = await testServers();
    const bucket = uniqueName("warmup");
    await createBucket(servers.s3, bucket);
    ({ store: objects, prefix } = openBucket(`s3://${bucket}/capsule`, {}, s3Env(servers.s3)));
    for (let i = 0; i < 7; i++) {
      const s = statefile({ cluster: CLUSTER, at: new Date(Date.UTC(2026, 10, 1 + i)).toISOString() });
      await objects.put(layout.statefileKey(prefix, s), serializeStatefile(s));
      written.push(s);
    }
    gate = gated(objects);
    server = new StatusServer({
      store: new BackupStore(gate.store, prefix),
      metrics: new DaemonMetrics(),
      readiness: () => ({ ready: true, checks: {} }),
      log: capturedLogger(),
      staleAfterMs: 200,
      handlerTimeoutMs: 1_000,
    });
    const address = await server.listen(0, "127.0.0.1");
    base = `http://127.0.0.1:${address.port}/api/v1/clusters/${CLUSTER}/backups`;
  });
  after(async () => {
    gate.open();
    await server.close();
  });

  async function get(query = "") {
    const res = await fetch(`${base}${query}`);
    return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, unknown> };
  }
  const idsOf = (json: Record<string, unknown>) =>
    (json["items"] as Array<{ backupId: string }>).map((i) => i.backupId);
  const newestFirst = () => written.map((s) => s.backupId).reverse();

  test("GIVEN 7 backups WHEN paged 3 at a time THEN the pages are newest first, cover all, and the last has no cursor", async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 3; page++) {
      const { status, json } = await get(`?limit=3${cursor ? `&cursor=${cursor}` : ""}`);
      assert.equal(status, 200);
      assert.equal(json["total"], 7);
      seen.push(...idsOf(json));
      cursor = json["nextCursor"] as string | undefined;
      if (page < 2) assert.ok(cursor, `page ${page} has a cursor`);
    }
    assert.equal(cursor, undefined);
    assert.deepEqual(seen, newestFirst());
  });

  test("GIVEN a cursor WHEN the backup it ends on is deleted before the next page THEN the next page still starts after it", async () => {
    const first = await get("?limit=2");
    const cursor = first.json["nextCursor"] as string;
    const gone = written.find((s) => s.backupId === idsOf(first.json)[1])!;
    await objects.delete(layout.statefileKey(prefix, gone));
    const next = await get(`?limit=2&cursor=${cursor}`);
    assert.deepEqual(idsOf(next.json), newestFirst().slice(2, 4));
    await objects.put(layout.statefileKey(prefix, gone), serializeStatefile(gone));
  });

  test("GIVEN a cursor that is not one the API returned WHEN listed THEN 400 naming the cursor", async () => {
    const { status, json } = await get("?cursor=bm9wZQ");
    assert.equal(status, 400);
    assert.match((json["error"] as { message: string }).message, /cursor/);
  });

  test("GIVEN a list read before WHEN the bucket is slow THEN the last list is answered, marked stale, with its age", async () => {
    const fresh = await get();
    assert.equal(fresh.json["stale"], undefined);
    assert.ok(fresh.headers.get("x-capsule-data-age"));
    gate.close();
    try {
      const { status, headers, json } = await get();
      assert.equal(status, 200);
      assert.equal(json["stale"], true);
      assert.equal(json["asOf"], fresh.json["asOf"]);
      assert.deepEqual(idsOf(json), idsOf(fresh.json));
      assert.match(headers.get("x-capsule-data-age") ?? "", /^\d+$/);
    } finally {
      gate.open();
    }
  });

  test("GIVEN nothing read yet for a filter WHEN the bucket is slower than the handler timeout THEN 503 with Retry-After", async () => {
    gate.close();
    try {
      const { status, headers } = await get("?engine=redis");
      assert.equal(status, 503);
      assert.match(headers.get("retry-after") ?? "", /^\d+$/);
    } finally {
      gate.open();
    }
  });
});
