/**
 * Restore drills (`capsule <engine> --verify`) against the harness' real PostgreSQL and Redis and the
 * Elasticsearch fake: a good backup verifies, an altered one fails naming what differed, the result lands in the
 * statefile, and no scratch target is left behind.
 */
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { after, before, describe, test } from "node:test";
import { openBackupStore } from "../../src/runtime/bucket.js";
import type { BackupStore } from "../../src/storage/backup-store.js";
import { layout } from "../../src/storage/layout.js";
import type { Statefile } from "../../src/domain/statefile.js";
import { FakeElasticsearch } from "../fakes/elasticsearch.js";
import { createBucket, s3Env, testServers, uniqueName, type TestServers } from "../harness/index.js";
import { capsule } from "../support/cli.js";
import { pgEnv, sql } from "../support/pg.js";
import { objectsOf, prefixOf } from "../support/raw-bucket.js";

async function scratchDirs(): Promise<string[]> {
  return (await readdir(tmpdir())).filter((d) => d.startsWith("capsule-verify-"));
}

describe("capsule <engine> --verify", () => {
  let servers: TestServers;
  let env: Record<string, string>;
  let store: BackupStore;
  let db: string;

  before(async () => {
    servers = await testServers();
    const bucket = uniqueName("verify");
    await createBucket(servers.s3, bucket);
    db = uniqueName("vdb").replace(/-/g, "_");
    await sql(servers, "postgres", `CREATE DATABASE ${db}`);
    await sql(
      servers,
      db,
      "CREATE TABLE t (id int PRIMARY KEY, s text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 2000) g;",
    );
    env = {
      ...s3Env(servers.s3),
      ...pgEnv(servers, db),
      CAPSULE_BUCKET: `s3://${bucket}/capsule`,
      CAPSULE_CLUSTER: "verify",
    };
    store = openBackupStore({}, env);
  });

  async function statefileOf(
    engine: "postgresql" | "redis" | "elasticsearch",
    id: string,
  ): Promise<Statefile> {
    return (await store.get({ cluster: "verify", engine, backupId: id })).statefile!;
  }

  test("GIVEN a good PostgreSQL backup WHEN drilled in a throwaway cluster THEN it is verified and nothing is left behind", async () => {
    const before = await scratchDirs();
    const created = await capsule(["pg", "--create"], env);
    assert.equal(created.code, 0, created.stderr);
    const result = await capsule(["pg", "--verify", "--id", "latest"], env);
    assert.equal(result.code, 0, result.stderr);
    const verification = (await statefileOf("postgresql", created.stdout.trim())).verification;
    assert.equal(verification.status, "verified");
    assert.match(verification.method ?? "", /throwaway PostgreSQL/);
    assert.match(verification.details ?? "", /1 tables, 2000 rows match/);
    assert.deepEqual(await scratchDirs(), before);
  });

  test("GIVEN a PostgreSQL backup WHEN drilled on a named server THEN the scratch database is dropped", async () => {
    const created = await capsule(["pg", "--create"], env);
    const result = await capsule(["pg", "--verify", "--verify-server", "--id", created.stdout.trim()], env);
    assert.equal(result.code, 0, result.stderr);
    const left = await sql(
      servers,
      "postgres",
      "SELECT datname FROM pg_database WHERE datname LIKE 'capsule_verify_%'",
    );
    assert.deepEqual(left, []);
  });

  test("GIVEN a dump re-uploaded with a row missing WHEN drilled THEN the checksum fails; with a forged checksum the row counts fail, naming the table", async () => {
    const scratchBefore = await scratchDirs();
    const good = (await capsule(["pg", "--create"], env)).stdout.trim();
    await sql(servers, db, "DELETE FROM t WHERE id = 1");
    const short = (await capsule(["pg", "--create"], env)).stdout.trim();
    await sql(servers, db, "INSERT INTO t VALUES (1, md5('1'))");
    const goodRef = { cluster: "verify", engine: "postgresql" as const, backupId: good };
    const shortRef = { ...goodRef, backupId: short };
    const name = (await statefileOf("postgresql", good)).artifact!.name;
    const bytes = Buffer.concat(
      await (await objectsOf(store).get(layout.artifactKey(prefixOf(store), shortRef, name))).toArray(),
    );
    await objectsOf(store).put(layout.artifactKey(prefixOf(store), goodRef, name), bytes);

    const tampered = await capsule(["pg", "--verify", "--id", good], env);
    assert.equal(tampered.code, 1);
    assert.match(tampered.stderr, /checksum mismatch/);
    assert.equal((await statefileOf("postgresql", good)).verification.status, "failed");

    const forgedArtifact = (await statefileOf("postgresql", short)).artifact!;
    await store.update(
      goodRef,
      (s) =>
        (s.artifact = { ...s.artifact!, sha256: forgedArtifact.sha256, sizeBytes: forgedArtifact.sizeBytes }),
    );
    const forged = await capsule(["pg", "--verify", "--id", good], env);
    assert.equal(forged.code, 1);
    assert.match(forged.stderr, /public\.t: 1999 rows, backup has 2000/);
    const verification = (await statefileOf("postgresql", good)).verification;
    assert.equal(verification.status, "failed");
    assert.match(verification.details ?? "", /public\.t: 1999 rows, backup has 2000/);
    assert.deepEqual(
      await scratchDirs(),
      scratchBefore,
      "the throwaway cluster is gone after a failed drill",
    );
  });

  test("GIVEN a Redis backup WHEN drilled THEN a throwaway redis-server loads it and the key counts match", async () => {
    const before = await scratchDirs();
    const source = { ...env, REDIS_HOST: servers.redis.host, REDIS_PORT: String(servers.redis.port) };
    const created = await capsule(["redis", "--create", "--target", "cache"], source);
    assert.equal(created.code, 0, created.stderr);
    const result = await capsule(["redis", "--verify", "--id", created.stdout.trim()], source);
    assert.equal(result.code, 0, result.stderr);
    const verification = (await statefileOf("redis", created.stdout.trim())).verification;
    assert.equal(verification.status, "verified");
    assert.match(verification.method ?? "", /throwaway redis-server/);
    assert.deepEqual(await scratchDirs(), before);
  });

  test("GIVEN a Redis backup with a flipped byte WHEN drilled THEN verification fails on the checksum and says so", async () => {
    const source = { ...env, REDIS_HOST: servers.redis.host, REDIS_PORT: String(servers.redis.port) };
    const id = (await capsule(["redis", "--create", "--target", "flipped"], source)).stdout.trim();
    const ref = { cluster: "verify", engine: "redis" as const, backupId: id };
    const key = layout.artifactKey(prefixOf(store), ref, (await statefileOf("redis", id)).artifact!.name);
    const bytes = Buffer.concat(await (await objectsOf(store).get(key)).toArray());
    bytes[9] = bytes[9]! ^ 0xff;
    await objectsOf(store).put(key, bytes);
    const before = await scratchDirs();
    const result = await capsule(["redis", "--verify", "--id", id], source);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /checksum mismatch/);
    const verification = (await statefileOf("redis", id)).verification;
    assert.equal(verification.status, "failed");
    assert.match(verification.details ?? "", /checksum mismatch/);
    assert.deepEqual(await scratchDirs(), before);
  });

  describe("Elasticsearch", () => {
    let es: FakeElasticsearch;
    before(async () => {
      es = await FakeElasticsearch.start({ flavour: "8", refreshIntervalMs: 0 });
      es.seed(
        "logs",
        { mappings: { properties: { n: { type: "long" } } } },
        [1, 2, 3].map((n) => ({ id: String(n), source: { n } })),
      );
    });
    after(() => es.close());

    test("GIVEN an export WHEN drilled THEN every line parses and the counts match; a forged export with a document missing fails", async () => {
      const esEnv = { ...env, ES_URL: es.url };
      const created = await capsule(["es", "--create"], esEnv);
      assert.equal(created.code, 0, created.stderr);
      const id = created.stdout.trim();
      const ok = await capsule(["es", "--verify", "--id", id], esEnv);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal((await statefileOf("elasticsearch", id)).verification.status, "verified");

      // With a verification cluster: restored there under capsule-verify-* names, counted, deleted; its own
      // index of the same name is never touched.
      const verifier = await FakeElasticsearch.start({ flavour: "8", refreshIntervalMs: 0 });
      try {
        verifier.seed("logs", {}, [{ id: "mine", source: { n: 42 } }]);
        const drilled = await capsule(["es", "--verify", "--id", id, "--verify-url", verifier.url], esEnv);
        assert.equal(drilled.code, 0, drilled.stderr);
        const verification = (await statefileOf("elasticsearch", id)).verification;
        assert.match(verification.method ?? "", /a restore into .* under capsule-verify-\d+-\*/);
        assert.match(verification.details ?? "", /1 indices, 3 documents restored and counted/);
        assert.equal(verifier.index("logs")?.docs.size, 1);
        const leftovers = (await (await fetch(`${verifier.url}/_cat/indices?format=json`)).json()) as Array<{
          index: string;
        }>;
        assert.deepEqual(
          leftovers.map((i) => i.index),
          ["logs"],
        );
      } finally {
        await verifier.close();
      }

      // Same export with one document line dropped, uploaded with a matching checksum.
      const { gunzipSync, gzipSync } = await import("node:zlib");
      const { createHash } = await import("node:crypto");
      const ref = { cluster: "verify", engine: "elasticsearch" as const, backupId: id };
      const name = (await statefileOf("elasticsearch", id)).artifact!.name;
      const key = layout.artifactKey(prefixOf(store), ref, name);
      const lines = gunzipSync(Buffer.concat(await (await objectsOf(store).get(key)).toArray()))
        .toString()
        .split("\n");
      const firstDoc = lines.findIndex((l) => l.startsWith('{"_index":'));
      assert.ok(firstDoc > 0, "the export has document lines");
      lines.splice(firstDoc, 1);
      const forged = gzipSync(lines.join("\n"));
      await objectsOf(store).put(key, forged);
      await store.update(
        ref,
        (s) =>
          (s.artifact = {
            ...s.artifact!,
            sha256: createHash("sha256").update(forged).digest("hex"),
            sizeBytes: forged.length,
          }),
      );
      const bad = await capsule(["es", "--verify", "--id", id], esEnv);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /logs: 2 documents, its trailer says 3/);
    });
  });
});
