/**
 * WAL retention and the WAL integrity sweep end to end (issue 19, docs/adr/0014 as amended): `capsule pg --prune`
 * and `capsule pg --check` against a real radosgw and a file:// store holding physical base backups (real
 * statefiles, begun as physical and committed with their place in the WAL) and streamed WAL written through
 * `WalArchive.putSegment`. What must hold: WAL before the oldest kept base backup goes and nothing after it; a
 * running base backup's WAL stays; with no base backup nothing goes; the recovery window of the kept backups is the
 * same after the prune; `--check` names an injected gap and a head past the listing, and is quiet on a whole chain.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { generateX25519Identity, identityToRecipient } from "age-encryption";
import { recoveryWindow, walFileName } from "../../src/domain/wal.js";
import { layout } from "../../src/storage/layout.js";
import { openBackupStore } from "../../src/runtime/bucket.js";
import type { BackupStore } from "../../src/storage/backup-store.js";
import { createBucket, s3Env, testServers, uniqueName } from "../harness/index.js";
import { capsule } from "../support/cli.js";
import { objectsOf, prefixOf } from "../support/raw-bucket.js";
import {
  basesFrom,
  lsnIn,
  physicalBackup,
  putHistory,
  putPartial,
  putSegments,
  runningPhysicalBackup,
  SEGMENT_SIZE,
  writeHead,
} from "../support/physical.js";

const name = (segno: number, timeline = 1) => walFileName(timeline, segno, SEGMENT_SIZE);

interface Bucket {
  env: Record<string, string>;
  store: BackupStore;
}

const stores: Array<[string, () => Promise<Bucket>]> = [
  [
    "file://",
    () => {
      const dir = mkdtempSync(join(tmpdir(), "capsule-walret-"));
      after(() => rmSync(dir, { recursive: true, force: true }));
      const env = { CAPSULE_BUCKET: `file://${dir}/capsule` };
      return Promise.resolve({ env, store: openBackupStore({}, env) });
    },
  ],
  [
    "radosgw",
    async () => {
      const servers = await testServers();
      const bucket = uniqueName("walret");
      await createBucket(servers.s3, bucket);
      const env = { ...s3Env(servers.s3), CAPSULE_BUCKET: `s3://${bucket}/capsule` };
      return { env, store: openBackupStore({}, env) };
    },
  ],
];

for (const [label, open] of stores) {
  describe(`WAL retention and the WAL sweep on ${label}`, () => {
    let bucket: Bucket;
    before(async () => {
      bucket = await open();
    });

    test("GIVEN three base backups and WAL from before the oldest WHEN --prune --keep-last 2 THEN the oldest backup and the WAL before the next one go, oldest first, and the recovery window of the kept backups is unchanged", async () => {
      const { store } = bucket;
      const cluster = uniqueName("walkeep");
      const env = { ...bucket.env, CAPSULE_CLUSTER: cluster };
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
      assert.ok(windowBefore, "the kept backups reach the head before the prune");

      const dry = await capsule(["pg", "--prune", "--target", "db", "--keep-last", "2", "--dry-run"], env);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(
        dry.stdout,
        new RegExp(`db WAL: would delete 4 of 13 segment\\(s\\) .*kept from ${name(5)}`),
      );
      assert.match(dry.stdout, new RegExp(`${oldest.backupId}.*physical succeeded.*would delete`));
      assert.equal((await archive.listing()).segments.length, 13, "a dry run deletes no WAL");

      const pruned = await capsule(["pg", "--prune", "--target", "db", "--keep-last", "2", "--yes"], env);
      assert.equal(pruned.code, 0, pruned.stderr);
      assert.match(pruned.stdout, /db WAL: deleted 4 of 13 segment\(s\)/);
      const after = await archive.listing();
      assert.deepEqual(
        after.segments.map((s) => s.segno),
        [5, 6, 7, 8, 9, 10, 11, 12, 13],
        "segments 1..4 are gone, 5 onward (and the partial) stay",
      );
      assert.deepEqual(recoveryWindow(basesFrom(kept), after), windowBefore);
      const left = (await store.list({ cluster, engine: "postgresql" })).map((e) => e.ref.backupId).sort();
      assert.deepEqual(left, kept.map((s) => s.backupId).sort());

      const check = await capsule(["pg", "--check"], env);
      assert.equal(check.code, 0, `a pruned chain is whole: ${check.stdout}${check.stderr}`);
      assert.match(check.stdout, /no damage found/);
    });

    test("GIVEN hourly logical dumps and older base backups WHEN --prune --keep-last 1 THEN the newest base backup and the WAL it needs stay", async () => {
      const { store } = bucket;
      const cluster = uniqueName("walkind");
      const env = { ...bucket.env, CAPSULE_CLUSTER: cluster };
      const archive = store.walArchive(cluster, "db");
      await putSegments(archive, 1, 1, 8);
      await writeHead(archive, 1, lsnIn(8, 100));
      const older = await physicalBackup(store, { cluster, target: "db", startSegno: 2 });
      const newer = await physicalBackup(store, { cluster, target: "db", startSegno: 6 });
      const dumps: string[] = [];
      for (let i = 0; i < 3; i++) {
        const run = await store.begin({
          cluster,
          target: "db",
          engine: "postgresql",
          trigger: { type: "schedule" },
          source: { database: "app" },
          tool: { capsule: "test" },
        });
        const uploaded = await run.uploadArtifact("dump.pgcustom.zst", Readable.from([Buffer.from("dump")]));
        await run.commit({
          artifact: { name: "dump.pgcustom.zst", format: "pg_dump-custom", compression: "zstd", ...uploaded },
        });
        dumps.push(run.ref.backupId);
      }
      const pruned = await capsule(["pg", "--prune", "--target", "db", "--keep-last", "1", "--yes"], env);
      assert.equal(pruned.code, 0, pruned.stderr);
      const left = new Set((await store.list({ cluster, engine: "postgresql" })).map((e) => e.ref.backupId));
      assert.ok(left.has(newer.backupId), "three newer dumps do not push out the newest base backup");
      assert.ok(!left.has(older.backupId));
      assert.ok(left.has(dumps[2]!) && !left.has(dumps[0]!) && !left.has(dumps[1]!));
      assert.deepEqual(
        (await archive.listing()).segments.map((s) => s.segno),
        [6, 7, 8],
      );
    });

    test("GIVEN a running physical base backup WHEN --prune THEN the WAL stored since it began stays, though it lies before the oldest kept base backup", async () => {
      const { store } = bucket;
      const cluster = uniqueName("walrun");
      const env = { ...bucket.env, CAPSULE_CLUSTER: cluster };
      const archive = store.walArchive(cluster, "db");
      await putSegments(archive, 1, 1, 8);
      await writeHead(archive, 1, lsnIn(8, 100));
      const older = await physicalBackup(store, { cluster, target: "db", startSegno: 2 });
      await physicalBackup(store, { cluster, target: "db", startSegno: 6 });
      const running = await runningPhysicalBackup(store, { cluster, target: "db" });
      const pruned = await capsule(["pg", "--prune", "--target", "db", "--keep-last", "1", "--yes"], env);
      assert.equal(pruned.code, 0, pruned.stderr);
      assert.match(pruned.stdout, new RegExp(`${running}.*physical running.*keep.*still running`));
      assert.match(pruned.stdout, /db WAL: none of 8 segment\(s\) goes/);
      assert.equal((await archive.listing()).segments.length, 8, "every segment was stored after it began");
      const left = (await store.list({ cluster, engine: "postgresql" })).map((e) => e.ref.backupId);
      assert.ok(!left.includes(older.backupId), "the older base backup itself still goes");
    });

    test("GIVEN WAL and no succeeded physical base backup (two failed runs) WHEN --prune THEN no WAL goes and the output says it grows until a base backup exists", async () => {
      const { store } = bucket;
      const cluster = uniqueName("walnone");
      const env = { ...bucket.env, CAPSULE_CLUSTER: cluster };
      const archive = store.walArchive(cluster, "db");
      await putSegments(archive, 1, 1, 5);
      await writeHead(archive, 1, lsnIn(5, 100));
      for (let i = 0; i < 2; i++) {
        const run = await store.begin({
          cluster,
          target: "db",
          engine: "postgresql",
          kind: "physical",
          trigger: { type: "schedule" },
          source: {},
          tool: { capsule: "test" },
        });
        await run.fail("streaming", new Error("pg_basebackup: connection refused"));
      }
      const pruned = await capsule(
        ["pg", "--prune", "--target", "db", "--keep-last", "1", "--failed-grace-hours", "0", "--yes"],
        env,
      );
      assert.equal(pruned.code, 0, pruned.stderr);
      assert.match(pruned.stdout, /db WAL: 5 segment\(s\), all kept: no succeeded physical base backup/);
      assert.match(pruned.stdout, /grows until a base backup exists/);
      assert.equal((await archive.listing()).segments.length, 5);
    });

    test("GIVEN a whole chain WHEN a segment range is deleted and then the head claims more than is stored THEN --check names the missing range, then the head past the listing, and exits 1", async () => {
      const { store } = bucket;
      const cluster = uniqueName("walgap");
      const env = { ...bucket.env, CAPSULE_CLUSTER: cluster };
      const archive = store.walArchive(cluster, "db");
      await putSegments(archive, 1, 1, 12);
      await writeHead(archive, 1, lsnIn(12, 500));
      const b = await physicalBackup(store, { cluster, target: "db", startSegno: 3 });
      const healthy = await capsule(["pg", "--check"], env);
      assert.equal(healthy.code, 0, `${healthy.stdout}${healthy.stderr}`);
      assert.match(healthy.stdout, /no damage found/);

      const listed = await archive.listing();
      await archive.deleteSegments(listed.segments.filter((s) => s.segno === 7 || s.segno === 8));
      const gap = await capsule(["pg", "--check"], env);
      assert.equal(gap.code, 1, gap.stdout);
      assert.match(gap.stdout, /wal\/db\s+wal-gap/);
      assert.match(
        gap.stdout,
        new RegExp(`missing ${name(7)} … ${name(8)} \\(2 segment\\(s\\)\\).*${b.backupId}`),
      );
      assert.doesNotMatch(gap.stdout, /wal-head-past-listing/);

      await putSegments(archive, 1, 7, 8);
      await writeHead(archive, 1, lsnIn(15, 10));
      const past = await capsule(["pg", "--check"], env);
      assert.equal(past.code, 1, past.stdout);
      assert.match(
        past.stdout,
        new RegExp(
          `wal-head-past-listing.*archived up to ${lsnIn(15, 10).replace("/", "\\/")}.*newest segment stored.*${name(12)}`,
        ),
      );
      assert.doesNotMatch(past.stdout, /wal-gap/, "what lies past the newest segment is the head's finding");
    });

    test("GIVEN segments on timeline 2 without its history file and a base backup of another system WHEN --check THEN both are named", async () => {
      const { store } = bucket;
      const cluster = uniqueName("walhist");
      const env = { ...bucket.env, CAPSULE_CLUSTER: cluster };
      const archive = store.walArchive(cluster, "db");
      await putSegments(archive, 1, 1, 4);
      await putSegments(archive, 2, 4, 6);
      await writeHead(archive, 2, lsnIn(6, 100));
      const foreign = await physicalBackup(store, {
        cluster,
        target: "db",
        startSegno: 2,
        systemIdentifier: "7399999999999999999",
      });
      const check = await capsule(["pg", "--check"], env);
      assert.equal(check.code, 1, check.stdout);
      assert.match(check.stdout, /wal-timeline-without-history.*3 segment\(s\) on timeline 2/);
      assert.match(check.stdout, new RegExp(`${foreign.backupId}\\s+wal-system-mismatch`));
    });
    test("GIVEN a switch from timeline 1 to 2 in segment 6 and a base backup on each WHEN --prune --keep-last 1 keeps the timeline-2 one THEN timeline 1's WAL goes, after the branch point too, timeline 2's from the kept start stays, and the chain is whole before and after", async () => {
      const { store } = bucket;
      const cluster = uniqueName("waltli");
      const env = { ...bucket.env, CAPSULE_CLUSTER: cluster };
      const archive = store.walArchive(cluster, "db");
      // Timeline 1 ran on to segment 8 (the old primary) after timeline 2 branched off in segment 6.
      await putSegments(archive, 1, 1, 8);
      await putHistory(archive, 2, [{ timeline: 1, switchpoint: lsnIn(6, 0x2000) }]);
      await putSegments(archive, 2, 6, 10);
      await writeHead(archive, 2, lsnIn(10, 100));
      await physicalBackup(store, { cluster, target: "db", startSegno: 2 });
      const kept = await physicalBackup(store, { cluster, target: "db", timeline: 2, startSegno: 7 });
      const windowBefore = recoveryWindow(basesFrom([kept]), await archive.listing());
      const before = await capsule(["pg", "--check"], env);
      assert.equal(before.code, 0, `${before.stdout}${before.stderr}`);

      const pruned = await capsule(["pg", "--prune", "--target", "db", "--keep-last", "1", "--yes"], env);
      assert.equal(pruned.code, 0, pruned.stderr);
      const after = await archive.listing();
      assert.deepEqual(
        after.segments.map((s) => s.name),
        [7, 8, 9, 10].map((n) => name(n, 2)),
      );
      assert.deepEqual(after.historyTimelines, [2], "history files are kept");
      assert.deepEqual(recoveryWindow(basesFrom([kept]), after), windowBefore);
      const check = await capsule(["pg", "--check"], env);
      assert.equal(check.code, 0, `${check.stdout}${check.stderr}`);
    });

    test("GIVEN a stored segment whose bytes were damaged WHEN --check THEN the sample names it as undecodable", async () => {
      const { store } = bucket;
      const cluster = uniqueName("waldmg");
      const env = { ...bucket.env, CAPSULE_CLUSTER: cluster };
      const archive = store.walArchive(cluster, "db");
      await putSegments(archive, 1, 1, 6);
      await writeHead(archive, 1, lsnIn(6, SEGMENT_SIZE - 1));
      await physicalBackup(store, { cluster, target: "db", startSegno: 2 });
      const key = layout.walSegmentKey(prefixOf(store), cluster, "db", name(6), {
        partial: false,
        encrypted: false,
      });
      await objectsOf(store).put(key, Buffer.from("not zstd at all"));
      const check = await capsule(["pg", "--check"], env);
      assert.equal(check.code, 1, check.stdout);
      assert.match(check.stdout, new RegExp(`wal/db\\s+wal-undecodable.*${name(6)}`));
    });

    test("GIVEN WAL encrypted to an age recipient WHEN --prune runs without any identity THEN the encrypted segments before the oldest kept base backup go, and --check with the identity finds the chain whole", async () => {
      const identity = await generateX25519Identity();
      const recipient = await identityToRecipient(identity);
      const cluster = uniqueName("walage");
      const env = { ...bucket.env, CAPSULE_CLUSTER: cluster };
      const sealed = openBackupStore({}, bucket.env, { encryptTo: [recipient] });
      const archive = sealed.walArchive(cluster, "db");
      await putSegments(archive, 1, 1, 6);
      await writeHead(archive, 1, lsnIn(6, 100));
      await physicalBackup(sealed, { cluster, target: "db", startSegno: 2 });
      await physicalBackup(sealed, { cluster, target: "db", startSegno: 4 });
      const pruned = await capsule(["pg", "--prune", "--target", "db", "--keep-last", "1", "--yes"], env);
      assert.equal(pruned.code, 0, pruned.stderr);
      assert.deepEqual(
        (await archive.listing()).segments.map((s) => s.segno),
        [4, 5, 6],
      );
      const stored: string[] = [];
      for await (const o of objectsOf(sealed).list(layout.walPrefix(prefixOf(sealed), cluster, "db")))
        stored.push(o.key);
      assert.equal(
        stored.filter((key) => key.endsWith(".zst.age")).length,
        3,
        "only ciphertext, and only 4..6",
      );
      const check = await capsule(["pg", "--check"], { ...env, CAPSULE_AGE_IDENTITY: identity });
      assert.equal(check.code, 0, `${check.stdout}${check.stderr}`);
    });
  });
}
