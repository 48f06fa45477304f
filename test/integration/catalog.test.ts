/**
 * The bucket catalog (docs/adr/0020) against both stores, radosgw and a directory: it is repaired from the listing
 * whatever changed behind capsule's back, two writers lose no entry, a damaged catalog is rebuilt and never trusted,
 * a read-only caller still lists correctly, and neither the integrity sweep nor retention is misled by it.
 */
import assert from "node:assert/strict";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { gunzipSync, gzipSync } from "node:zlib";
import { before, describe, test } from "node:test";
import { type BackupEntry, BackupStore } from "../../src/storage/backup-store.js";
import { entryDocument, report } from "../../src/commands/render.js";
import { type Catalog, parseCatalog, serializeCatalog } from "../../src/storage/catalog.js";
import { checkIntegrity } from "../../src/storage/integrity.js";
import { layout } from "../../src/storage/layout.js";
import type { ObjectStore, PutOptions } from "../../src/storage/object-store.js";
import { getBytes } from "../../src/storage/object-store.js";
import { openBucket } from "../../src/storage/open-store.js";
import { deletePlanned, planStoredRetention } from "../../src/storage/retention.js";
import { serializeStatefile } from "../../src/storage/statefile.js";
import { CapsuleError, ErrorCode } from "../../src/domain/errors.js";
import type { Statefile } from "../../src/domain/statefile.js";
import { createBucket, s3Env, testServers, uniqueName } from "../harness/index.js";
import { statefile } from "../support/entries.js";

const CLUSTER = "c1";
const ENGINE = "postgresql";

interface Bucket {
  objects: ObjectStore;
  prefix: string;
}

async function s3Bucket(): Promise<Bucket> {
  const servers = await testServers();
  const bucket = uniqueName("catalog");
  await createBucket(servers.s3, bucket);
  const { store, prefix } = openBucket(`s3://${bucket}/capsule`, {}, s3Env(servers.s3));
  return { objects: store, prefix };
}

async function fileBucket(): Promise<Bucket> {
  const dir = await mkdtemp(path.join(tmpdir(), "capsule-catalog-"));
  const { store, prefix } = openBucket(`file://${dir}`, {}, {});
  return { objects: store, prefix };
}

/** The same object store seen through a hook on catalog writes: what another writer or a read-only bucket does. */
function hooked(objects: ObjectStore, beforeCatalogPut: (key: string) => Promise<void>): ObjectStore {
  return {
    description: objects.description,
    put: async (key: string, body: Readable | Uint8Array | string, options?: PutOptions) => {
      if (key.endsWith("/catalog.json.gz")) await beforeCatalogPut(key);
      return objects.put(key, body, options);
    },
    get: (key) => objects.get(key),
    getWithEtag: (key) => objects.getWithEtag(key),
    head: (key) => objects.head(key),
    list: (prefix, options) => objects.list(prefix, options),
    delete: (key) => objects.delete(key),
    check: () => objects.check(),
  };
}

for (const kind of ["s3", "file"] as const) {
  describe(`bucket catalog on ${kind}`, () => {
    let bucket: Bucket;
    let cluster: string;
    before(async () => {
      bucket = kind === "s3" ? await s3Bucket() : await fileBucket();
    });
    let clusters = 0;
    /** Each test its own cluster, so its catalog starts absent. */
    const freshCluster = () => (cluster = `${CLUSTER}-${clusters++}`);
    const open = (objects = bucket.objects) => new BackupStore(objects, bucket.prefix);
    const catalogKey = () => layout.catalogKey(bucket.prefix, cluster, ENGINE);
    const put = async (overrides: Partial<Statefile> & { at?: string } = {}): Promise<Statefile> => {
      const s = statefile({ cluster, engine: ENGINE, ...overrides });
      await bucket.objects.put(layout.statefileKey(bucket.prefix, s), serializeStatefile(s));
      return s;
    };
    const remove = (s: Statefile) => bucket.objects.delete(layout.statefileKey(bucket.prefix, s));
    const storedCatalog = async (): Promise<Catalog | undefined> =>
      parseCatalog(await getBytes(bucket.objects, catalogKey()), cluster, ENGINE);
    const ids = (entries: ReadonlyArray<{ ref: { backupId: string } }>) =>
      entries.map((e) => e.ref.backupId).sort();
    const sorted = (list: Statefile[]) => list.map((s) => s.backupId).sort();

    test("GIVEN statefiles and no catalog WHEN listed THEN the catalog holds each with the ETag and size the listing shows", async () => {
      freshCluster();
      const written = [await put(), await put({ status: "failed" }), await put({ status: "running" })];
      const entries = await open().list({ cluster });
      assert.deepEqual(ids(entries), sorted(written));
      const catalog = await storedCatalog();
      assert.ok(catalog, "a readable catalog was written");
      const listed = new Map<string, { etag?: string; size: number }>();
      for await (const o of bucket.objects.list(layout.enginePrefix(bucket.prefix, cluster, ENGINE)))
        listed.set(o.key, o);
      for (const s of written) {
        const held = catalog.entries.get(s.backupId);
        const object = listed.get(layout.statefileKey(bucket.prefix, s));
        assert.equal(held?.etag, object?.etag);
        assert.equal(held?.size, object?.size);
        assert.ok(held && "statefile" in held && held.statefile.status === s.status);
      }
    });

    test("GIVEN a catalog WHEN statefiles are added, removed and changed behind capsule's back THEN a new process's listing and the catalog follow the bucket", async () => {
      freshCluster();
      const [kept, removed, changed] = [await put(), await put(), await put()];
      await open().list({ cluster });
      const added = [await put(), await put()];
      await remove(removed);
      const failed: Statefile = {
        ...changed,
        status: "failed",
        phase: "dumping",
        artifact: undefined,
      };
      delete (failed as { artifact?: unknown }).artifact;
      failed.error = { phase: "dumping", message: "changed behind capsule's back" };
      await bucket.objects.put(layout.statefileKey(bucket.prefix, failed), serializeStatefile(failed));

      const entries = await open().list({ cluster });
      assert.deepEqual(ids(entries), sorted([kept, changed, ...added]));
      assert.equal(entries.find((e) => e.ref.backupId === changed.backupId)?.state, "failed");
      const catalog = await storedCatalog();
      assert.deepEqual([...(catalog?.entries.keys() ?? [])].sort(), sorted([kept, changed, ...added]));
      const held = catalog?.entries.get(changed.backupId);
      assert.ok(held && "statefile" in held && held.statefile.status === "failed");
    });

    test("GIVEN a catalog entry whose ETag and size match the listing WHEN a new process lists THEN the entry is used and the statefile not read", async () => {
      freshCluster();
      const s = await put();
      await open().list({ cluster });
      const catalog = await storedCatalog();
      const held = catalog!.entries.get(s.backupId)!;
      assert.ok("statefile" in held);
      // Only a catalog entry could say this: the statefile says target "db".
      const marked = { ...held, statefile: { ...held.statefile, target: "from-catalog" } };
      await bucket.objects.put(
        catalogKey(),
        await serializeCatalog({ ...catalog!, entries: new Map([[s.backupId, marked]]) }),
      );
      const [entry] = await open().list({ cluster });
      assert.equal(entry?.statefile?.target, "from-catalog");
    });

    test("GIVEN a catalog claiming a backup whose statefile does not exist WHEN listed THEN it does not appear and the catalog drops it", async () => {
      freshCluster();
      const real = await put();
      await open().list({ cluster });
      const ghost = statefile({ cluster, engine: ENGINE, at: "2030-01-01T00:00:00.000Z" });
      const catalog = await storedCatalog();
      const entries = new Map(catalog!.entries);
      entries.set(ghost.backupId, { etag: '"ghost"', size: 100, statefile: ghost });
      await bucket.objects.put(catalogKey(), await serializeCatalog({ ...catalog!, entries }));

      assert.deepEqual(ids(await open().list({ cluster })), [real.backupId]);
      assert.deepEqual([...(await storedCatalog())!.entries.keys()], [real.backupId]);
    });

    const damaged: Array<[string, (good: Buffer, forged: Buffer) => Buffer]> = [
      ["garbage bytes", () => Buffer.from("\x00\x01not a catalog at all\xff")],
      ["truncated", (_good, forged) => forged.subarray(0, Math.floor(forged.length / 2))],
      ["an unknown version", (_good, forged) => rewrite(forged, (d) => ({ ...d, catalogVersion: 99 }))],
      ["another cluster's", (_good, forged) => rewrite(forged, (d) => ({ ...d, cluster: "elsewhere" }))],
      ["plain JSON, not gzip", (_good, forged) => gunzipped(forged)],
    ];
    for (const [what, damage] of damaged) {
      test(`GIVEN a catalog that is ${what} WHEN listed THEN nothing in it is trusted and it is rebuilt from the statefiles`, async () => {
        freshCluster();
        const written = [await put(), await put()];
        await open().list({ cluster });
        const good = await getBytes(bucket.objects, catalogKey());
        // Forged: a ghost backup and a changed target with the real ETag; trusted, either would show.
        const catalog = parseCatalog(good, cluster, ENGINE)!;
        const ghost = statefile({ cluster, engine: ENGINE });
        const entries = new Map(catalog.entries);
        entries.set(ghost.backupId, { etag: '"ghost"', size: 1, statefile: ghost });
        for (const [id, e] of entries)
          if ("statefile" in e) entries.set(id, { ...e, statefile: { ...e.statefile, target: "forged" } });
        const forged = await serializeCatalog({ ...catalog, entries });
        await bucket.objects.put(catalogKey(), damage(good, forged));

        const listed = await open().list({ cluster });
        assert.deepEqual(ids(listed), sorted(written));
        assert.ok(listed.every((e) => e.statefile?.target === "db"));
        const rebuilt = await storedCatalog();
        assert.deepEqual([...(rebuilt?.entries.keys() ?? [])].sort(), sorted(written));
      });
    }

    test("GIVEN a catalog entry that fails the statefile schema WHEN listed THEN that statefile is read instead", async () => {
      freshCluster();
      const s = await put();
      await open().list({ cluster });
      const good = await getBytes(bucket.objects, catalogKey());
      await bucket.objects.put(
        catalogKey(),
        rewrite(good, (d) => {
          const entries = d.entries as Record<string, { statefile: Record<string, unknown> }>;
          entries[s.backupId]!.statefile.status = "exploded";
          return d;
        }),
      );
      const [entry] = await open().list({ cluster });
      assert.equal(entry?.state, "succeeded");
    });

    test("GIVEN two stores committing at once WHEN both list at once THEN the catalog holds both backups", async () => {
      freshCluster();
      const [a, b] = [open(), open()];
      const commit = async (store: BackupStore, target: string) => {
        const run = await store.begin({
          cluster,
          target,
          engine: ENGINE,
          trigger: { type: "manual" },
          source: { host: "h" },
          tool: { capsule: "test" },
        });
        const uploaded = await run.uploadArtifact("a.bin", Readable.from([Buffer.from(target)]));
        await run.commit({ artifact: { name: "a.bin", format: "t", compression: "none", ...uploaded } });
        return run.ref.backupId;
      };
      const committed = await Promise.all([commit(a, "one"), commit(b, "two")]);
      await Promise.all([a.list({ cluster }), b.list({ cluster })]);
      const catalog = await storedCatalog();
      assert.deepEqual([...(catalog?.entries.keys() ?? [])].sort(), [...committed].sort());
    });

    test("GIVEN another writer's catalog lands between a listing and its catalog write WHEN the write loses THEN it merges and loses none of the other writer's entries", async () => {
      freshCluster();
      const first = await put();
      let second: Statefile | undefined;
      let raced = false;
      const racing = open(
        hooked(bucket.objects, async () => {
          if (raced) return;
          raced = true;
          // Another writer: a backup this listing never saw, and the catalog recording it.
          second = await put();
          await open().list({ cluster });
        }),
      );
      assert.deepEqual(ids(await racing.list({ cluster })), [first.backupId]);
      assert.ok(raced);
      const catalog = await storedCatalog();
      assert.deepEqual([...(catalog?.entries.keys() ?? [])].sort(), sorted([first, second!]));
    });

    test("GIVEN a bucket where catalog writes are denied WHEN listed THEN the listing is still whole and the problem only reported", async () => {
      freshCluster();
      const written = [await put(), await put()];
      const problems: string[] = [];
      const readOnly = new BackupStore(
        hooked(bucket.objects, () =>
          Promise.reject(new CapsuleError(ErrorCode.StoreAccessDenied, "access denied")),
        ),
        bucket.prefix,
        { onCatalogProblem: (message) => problems.push(message) },
      );
      assert.deepEqual(ids(await readOnly.list({ cluster })), sorted(written));
      assert.equal(problems.length, 1);
      assert.match(problems[0]!, /catalog not written \(access denied\)/);
      assert.equal(await bucket.objects.head(catalogKey()), undefined);
    });

    test("GIVEN a catalog beside the backup folders WHEN the integrity sweep runs THEN it finds nothing, and the catalog cannot be deleted as an orphan", async () => {
      freshCluster();
      const s = await put({ artifact: undefined, status: "failed", error: { phase: "x", message: "y" } });
      const store = open();
      await store.list({ cluster });
      assert.ok(await bucket.objects.head(catalogKey()));
      assert.deepEqual(await checkIntegrity(store, cluster, ENGINE), []);
      await assert.rejects(store.deleteOrphan(catalogKey()), /not in a backup folder/);
      assert.deepEqual(ids(await store.list({ cluster })), [s.backupId]);
    });

    test("GIVEN a stale catalog entry saying the newest backup succeeded WHEN retention runs THEN it re-validates and keeps the one that really restores", async () => {
      freshCluster();
      const putWithArtifact = async (at: string) => {
        const s = await put({ at, target: "db" });
        await bucket.objects.put(layout.artifactKey(bucket.prefix, s, s.artifact!.name), "0123456789");
        return s;
      };
      const older = await putWithArtifact("2026-11-01T00:00:00.000Z");
      const newer = await putWithArtifact("2026-11-02T00:00:00.000Z");
      const store = open();
      await store.list({ cluster });
      // Behind capsule's back the newer one turns out failed: its catalog entry still says succeeded.
      const failed = { ...newer, status: "failed", phase: "dumping" } as Statefile;
      failed.error = { phase: "dumping", message: "x" };
      await bucket.objects.put(layout.statefileKey(bucket.prefix, failed), serializeStatefile(failed));
      const scope = { cluster, engine: ENGINE, target: "db" } as const;
      const policy = { keepLast: 1 };
      const plan = await planStoredRetention(open(), scope, policy);
      assert.ok(!plan.delete.some((d) => d.backupId === older.backupId), "the only good backup is kept");
      await deletePlanned(open(), scope, policy, plan);
      assert.ok(await bucket.objects.head(layout.statefileKey(bucket.prefix, older)));
    });

    test("GIVEN backups listed once from their statefiles WHEN a new process lists them from the catalog THEN `--list -o json` prints the same text, and no statefile is read", async () => {
      freshCluster();
      await put({ at: "2026-11-01T00:00:00.000Z" });
      await put({
        at: "2026-11-02T00:00:00.000Z",
        status: "failed",
        error: { phase: "dumping", message: 'é "x"' },
      });
      await put({ at: "2026-11-03T00:00:00.000Z", status: "running" });
      const corrupt = statefile({ cluster, engine: ENGINE, at: "2026-11-04T00:00:00.000Z" });
      await bucket.objects.put(layout.statefileKey(bucket.prefix, corrupt), "{ not json");
      const printed = (entries: BackupEntry[]) => report("json", { document: entries.map(entryDocument) });

      const fromStatefiles = printed(await open().list({ cluster }));
      let statefileReads = 0;
      const counting = hooked(bucket.objects, () => Promise.resolve());
      const fromCatalog = printed(
        await new BackupStore(
          {
            ...counting,
            getWithEtag: (key) => {
              if (key.endsWith("/statefile.json")) statefileReads++;
              return bucket.objects.getWithEtag(key);
            },
          },
          bucket.prefix,
        ).list({ cluster }),
      );
      assert.equal(statefileReads, 0);
      assert.equal(fromCatalog, fromStatefiles);
      assert.equal((JSON.parse(fromCatalog) as unknown[]).length, 4);
    });

    test("GIVEN a listing's statefiles WHEN the caller edits them THEN the same store's next listings are unchanged, from the catalog or from its read cache", async () => {
      freshCluster();
      await put();
      await put({ status: "failed", error: { phase: "dumping", message: "x" } });
      const edit = (entries: BackupEntry[]) => {
        for (const e of entries) {
          e.statefile!.target = "edited";
          e.statefile!.restores.push({ at: "2026-11-05T00:00:00.000Z" } as never);
        }
      };
      const store = open();
      const first = await store.list({ cluster });
      const expected = JSON.stringify(first);
      edit(first);
      const fromCatalog = await store.list({ cluster });
      assert.equal(JSON.stringify(fromCatalog), expected);
      edit(fromCatalog);
      // Catalog writes denied and none stored: the second listing finds each statefile in the read cache.
      await bucket.objects.delete(catalogKey());
      const noCatalog = new BackupStore(
        hooked(bucket.objects, () => Promise.reject(new CapsuleError(ErrorCode.StoreAccessDenied, "denied"))),
        bucket.prefix,
      );
      const read = await noCatalog.list({ cluster });
      assert.equal(JSON.stringify(read), expected);
      edit(read);
      const cached = await noCatalog.list({ cluster });
      assert.equal(JSON.stringify(cached), expected);
      edit(cached);
      assert.equal(JSON.stringify(await noCatalog.list({ cluster })), expected);
    });
  });
}

function gunzipped(bytes: Buffer): Buffer {
  return Buffer.from(JSON.stringify(JSON.parse(zlibText(bytes))));
}

function rewrite(bytes: Buffer, change: (document: Record<string, unknown>) => unknown): Buffer {
  return gzipSync(JSON.stringify(change(JSON.parse(zlibText(bytes)) as Record<string, unknown>)));
}

function zlibText(bytes: Buffer): string {
  return gunzipSync(bytes).toString("utf8");
}
