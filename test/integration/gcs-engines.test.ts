/**
 * PostgreSQL and Redis end to end through the CLI with a gs:// bucket (the FAKE GCS of test/fakes/gcs.ts, as
 * STORAGE_EMULATOR_HOST): create, list, verify, restore, prune and check, against the harness' real servers. The
 * engines are the ones S3 runs; what this proves is that every verb works on GCS's generations and uploads.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Statefile } from "../../src/domain/statefile.js";
import { testServers, uniqueName, type TestServers } from "../harness/index.js";
import { gcsBucket, gcsEnv } from "../harness/gcs.js";
import type { RedisServer } from "../harness/redis.js";
import { capsule } from "../support/cli.js";
import { databaseDigest, pgEnv, RICH_SCHEMA, sql } from "../support/pg.js";
import { dumpAll, dumpDifferences, fillEveryType, redisEnv, startTargetRedis } from "../support/redis.js";

async function ok(args: string[], env: Record<string, string>): Promise<string> {
  const result = await capsule(args, env);
  assert.equal(result.code, 0, `capsule ${args.join(" ")}: ${result.stderr}`);
  return result.stdout;
}

async function listed(
  engine: string,
  env: Record<string, string>,
): Promise<Array<{ backupId: string; state: string }>> {
  return JSON.parse(await ok([engine, "--list", "-o", "json"], env)) as Array<{
    backupId: string;
    state: string;
  }>;
}

describe("capsule pg on a gs:// bucket", () => {
  let servers: TestServers;
  let env: Record<string, string>;
  let db: string;

  before(async () => {
    servers = await testServers();
    const { fake, bucket } = await gcsBucket("pg");
    db = uniqueName("gcs").replace(/-/g, "_");
    await sql(servers, "postgres", `CREATE DATABASE ${db}`);
    await sql(servers, db, RICH_SCHEMA);
    env = {
      ...gcsEnv(fake),
      ...pgEnv(servers, db),
      CAPSULE_BUCKET: `gs://${bucket}/capsule`,
      CAPSULE_CLUSTER: "gcs",
    };
  });

  test("GIVEN two backups WHEN listed, verified, restored, pruned and checked THEN each verb works on GCS", async () => {
    const before = await databaseDigest(servers, db);
    const first = (await ok(["pg", "--create"], env)).trim();
    const second = (await ok(["pg", "--create"], env)).trim();
    assert.deepEqual(
      (await listed("pg", env)).map((b) => [b.backupId, b.state]),
      [
        [second, "succeeded"],
        [first, "succeeded"],
      ],
    );

    await ok(["pg", "--verify", "--id", "latest"], env);
    const described = JSON.parse(
      await ok(["pg", "--describe", "--id", second, "-o", "json"], env),
    ) as Statefile;
    assert.equal(described.verification.status, "verified");

    await sql(servers, db, "DELETE FROM everything WHERE id % 3 = 0");
    await ok(["pg", "--restore", "--yes", "--id", first], env);
    assert.deepEqual(await databaseDigest(servers, db), before);
    const restores = (
      JSON.parse(await ok(["pg", "--describe", "--id", first, "-o", "json"], env)) as Statefile
    ).restores;
    assert.equal(restores[0]?.result, "succeeded");

    const target = described.target;
    await ok(["pg", "--prune", "--target", target, "--keep-last", "1", "--yes"], env);
    assert.deepEqual(
      (await listed("pg", env)).map((b) => b.backupId),
      [second],
    );
    const check = await capsule(["pg", "--check", "-o", "json"], env);
    assert.equal(check.code, 0, check.stderr);
    assert.deepEqual(JSON.parse(check.stdout), []);
  });
});

describe("capsule redis on a gs:// bucket", () => {
  const started: RedisServer[] = [];
  let env: (server: RedisServer) => Record<string, string>;

  before(async () => {
    await testServers();
    const { fake, bucket } = await gcsBucket("redis");
    env = (server) => ({
      ...gcsEnv(fake),
      ...redisEnv(server),
      CAPSULE_BUCKET: `gs://${bucket}/capsule`,
      CAPSULE_CLUSTER: "gcs",
    });
  });

  after(async () => {
    await Promise.allSettled(started.map((s) => s.stop()));
  });

  test("GIVEN a server with every type WHEN backed up, verified, restored elsewhere, pruned and checked THEN the keys match", async () => {
    const source = await startTargetRedis();
    const target = await startTargetRedis();
    started.push(source, target);
    await fillEveryType(source);
    const expected = await dumpAll(source);
    const first = (await ok(["redis", "--create"], env(source))).trim();
    const second = (await ok(["redis", "--create"], env(source))).trim();
    assert.deepEqual(
      (await listed("redis", env(source))).map((b) => b.backupId),
      [second, first],
    );
    await ok(["redis", "--verify", "--id", "latest"], env(source));
    const described = JSON.parse(
      await ok(["redis", "--describe", "--id", second, "-o", "json"], env(source)),
    ) as Statefile;
    assert.equal(described.verification.status, "verified");

    await ok(["redis", "--restore", "--yes", "--id", first], env(target));
    assert.deepEqual(dumpDifferences(expected, await dumpAll(target)), []);

    await ok(["redis", "--prune", "--target", described.target, "--keep-last", "1", "--yes"], env(source));
    assert.deepEqual(
      (await listed("redis", env(source))).map((b) => b.backupId),
      [second],
    );
    const check = await capsule(["redis", "--check", "-o", "json"], env(source));
    assert.equal(check.code, 0, check.stderr);
    assert.deepEqual(JSON.parse(check.stdout), []);
  });
});
