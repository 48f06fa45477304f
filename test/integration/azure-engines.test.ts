/**
 * PostgreSQL and Redis end to end with an Azure Blob Storage bucket (Azurite), through the real CLI: create, list,
 * verify, restore, prune and check — what pg.test.ts and redis.test.ts prove on S3, once per engine on Azure.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Statefile } from "../../src/domain/statefile.js";
import { azureEnv, createContainer, testServers, uniqueName, type TestServers } from "../harness/index.js";
import type { RedisServer } from "../harness/redis.js";
import { capsule } from "../support/cli.js";
import { databaseDigest, pgEnv, sql } from "../support/pg.js";
import {
  call,
  dumpAll,
  dumpDifferences,
  fillEveryType,
  redisEnv,
  startTargetRedis,
} from "../support/redis.js";

describe("capsule on an Azure bucket", () => {
  let servers: TestServers;
  let bucket: string;

  before(async () => {
    servers = await testServers();
    const container = uniqueName("engines");
    await createContainer(servers.azure, container);
    bucket = `azure://${container}/capsule`;
  });

  /** Runs capsule, asserts it succeeded, and returns its stdout. */
  async function ok(args: string[], env: Record<string, string>): Promise<string> {
    const result = await capsule(args, { ...azureEnv(servers.azure), CAPSULE_BUCKET: bucket, ...env });
    assert.equal(result.code, 0, `capsule ${args.join(" ")}: ${result.stderr}`);
    return result.stdout;
  }

  async function listed(engine: string, cluster: string, env: Record<string, string>) {
    const out = await ok([engine, "--list", "--cluster", cluster, "-o", "json"], env);
    return JSON.parse(out) as Array<{ backupId: string; state: string }>;
  }

  async function describeBackup(engine: string, id: string, cluster: string, env: Record<string, string>) {
    const out = await ok([engine, "--describe", "--id", id, "--cluster", cluster, "-o", "json"], env);
    return JSON.parse(out) as Statefile;
  }

  test("GIVEN a PostgreSQL database WHEN backed up twice, verified, restored, pruned and checked on Azure THEN the data comes back and only the newest backup stays", async () => {
    const db = uniqueName("azpg").replace(/-/g, "_");
    await sql(servers, "postgres", `CREATE DATABASE ${db}`);
    await sql(
      servers,
      db,
      "CREATE TABLE t (id int PRIMARY KEY, s text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g; CREATE SEQUENCE n; SELECT nextval('n');",
    );
    const env = pgEnv(servers, db);
    const cluster = "azpg";
    const older = (await ok(["pg", "--create", "--cluster", cluster], env)).trim();
    const before = await databaseDigest(servers, db);
    const newest = (await ok(["pg", "--create", "--cluster", cluster], env)).trim();
    assert.deepEqual(
      (await listed("pg", cluster, env)).map((e) => [e.backupId, e.state]),
      [
        [newest, "succeeded"],
        [older, "succeeded"],
      ],
    );

    await ok(["pg", "--verify", "--id", "latest", "--cluster", cluster], env);
    assert.equal((await describeBackup("pg", newest, cluster, env)).verification.status, "verified");

    await sql(servers, db, "DELETE FROM t WHERE id % 2 = 0; SELECT nextval('n');");
    await ok(["pg", "--restore", "--yes", "--id", newest, "--cluster", cluster], env);
    assert.deepEqual(await databaseDigest(servers, db), before);

    await ok(["pg", "--prune", "--yes", "--target", db, "--keep-last", "1", "--cluster", cluster], env);
    assert.deepEqual(
      (await listed("pg", cluster, env)).map((e) => e.backupId),
      [newest],
    );
    const check = await ok(["pg", "--check", "--cluster", cluster], env);
    assert.match(check, /no damage found/);
  });

  describe("redis", () => {
    const started: RedisServer[] = [];
    after(async () => {
      await Promise.allSettled(started.map((s) => s.stop()));
    });

    test("GIVEN a Redis server WHEN backed up twice, verified, restored into another, pruned and checked on Azure THEN every key is back and only the newest backup stays", async () => {
      const source = await startTargetRedis();
      const target = await startTargetRedis();
      started.push(source, target);
      await fillEveryType(source);
      const cluster = "azredis";
      const older = (await ok(["redis", "--create", "--cluster", cluster], redisEnv(source))).trim();
      await call(source, "SET", "added-later", "yes");
      const expected = await dumpAll(source);
      const newest = (await ok(["redis", "--create", "--cluster", cluster], redisEnv(source))).trim();
      assert.deepEqual(
        (await listed("redis", cluster, {})).map((e) => e.backupId),
        [newest, older],
      );

      await ok(["redis", "--verify", "--id", newest, "--cluster", cluster], {});
      assert.equal((await describeBackup("redis", newest, cluster, {})).verification.status, "verified");

      await call(target, "SET", "stale", "must go");
      await ok(["redis", "--restore", "--yes", "--id", newest, "--cluster", cluster], redisEnv(target));
      assert.deepEqual(dumpDifferences(expected, await dumpAll(target)), []);

      await ok(
        ["redis", "--prune", "--yes", "--target", "redis", "--keep-last", "1", "--cluster", cluster],
        {},
      );
      assert.deepEqual(
        (await listed("redis", cluster, {})).map((e) => e.backupId),
        [newest],
      );
      assert.match(await ok(["redis", "--check", "--cluster", cluster], {}), /no damage found/);
    });
  });
});
