/**
 * Redis end to end against real redis-server processes and real S3 (radosgw): backups over the replication
 * protocol (both payload forms), online restores into a second server compared key by key (DUMP + PTTL), the
 * failure paths (corrupt artifact, truncated or corrupt snapshot, a source that goes away, a target that cannot
 * reach capsule) and one clear line for each mistake. Restores never target the harness' shared server.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { restoreRedis } from "../../src/engines/redis/restore.js";
import { openBackupStore } from "../../src/runtime/bucket.js";
import type { BackupStore } from "../../src/storage/backup-store.js";
import { layout } from "../../src/storage/layout.js";
import type { Statefile } from "../../src/domain/statefile.js";
import { createBucket, s3Env, testServers, uniqueName, type TestServers } from "../harness/index.js";
import type { RedisServer } from "../harness/redis.js";
import { capsule } from "../support/cli.js";
import {
  call,
  dumpAll,
  dumpDifferences,
  fakeMaster,
  fillEveryType,
  redisEnv,
  session,
  startTargetRedis,
  text,
  tinyRdb,
  type RedisEndpoint,
} from "../support/redis.js";
import { objectsOf, prefixOf } from "../support/raw-bucket.js";

const exec = promisify(execFile);

describe("capsule redis", () => {
  let servers: TestServers;
  let bucket: string;
  let store: BackupStore;
  let source: RedisEndpoint;
  const started: RedisServer[] = [];

  before(async () => {
    servers = await testServers();
    bucket = `s3://${uniqueName("redis")}/capsule`;
    await createBucket(servers.s3, new URL(bucket).host);
    store = openBackupStore({ bucket }, s3Env(servers.s3));
    source = servers.redis;
    // The shared server keeps its defaults except the 5 s wait for more replicas before a diskless transfer.
    await call(source, "CONFIG", "SET", "repl-diskless-sync-delay", "0");
  });

  after(async () => {
    await Promise.allSettled(started.map((s) => s.stop()));
  });

  async function server(config: Record<string, string> = {}): Promise<RedisServer> {
    const s = await startTargetRedis(config);
    started.push(s);
    return s;
  }

  function env(server: RedisEndpoint, extra: Record<string, string> = {}): Record<string, string> {
    return { ...s3Env(servers.s3), ...redisEnv(server), CAPSULE_BUCKET: bucket, ...extra };
  }

  async function create(from: RedisEndpoint, cluster: string, extraEnv: Record<string, string> = {}) {
    const result = await capsule(["redis", "--create", "--cluster", cluster], env(from, extraEnv));
    assert.equal(result.code, 0, result.stderr);
    return result.stdout.trim();
  }

  async function describeBackup(id: string, cluster: string): Promise<Statefile> {
    const r = await capsule(
      ["redis", "--describe", "--id", id, "--cluster", cluster, "-o", "json"],
      env(source),
    );
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Statefile;
  }

  async function role(server: RedisEndpoint): Promise<string> {
    const info = await text(server, "INFO", "replication");
    return /role:(\w+)/.exec(info)?.[1] ?? "?";
  }

  test("GIVEN every data type, binary keys, TTLs and four databases WHEN backed up and restored into another, non-empty server THEN every key, value and TTL is back and the old keys are gone", async () => {
    await call(source, "FLUSHALL");
    const written = await fillEveryType(source);
    const before = await dumpAll(source);
    const id = await create(source, "types");

    const statefile = await describeBackup(id, "types");
    assert.equal(statefile.status, "succeeded");
    assert.equal(statefile.artifact?.name, "dump.rdb");
    assert.equal(statefile.artifact?.format, "rdb");
    assert.match(statefile.artifact?.formatVersion ?? "", /^\d+$/);
    assert.equal(statefile.tool["rdbTransfer"], "diskless", "the shared server sends the $EOF:<mark> form");
    assert.equal(statefile.tool["rdbChecksum"], "verified");
    const fingerprint = statefile.fingerprint as { databases: unknown; keys: number; serverVersion: string };
    assert.deepEqual(fingerprint.databases, written);
    assert.equal(fingerprint.keys, 64);
    assert.match(fingerprint.serverVersion, /^\d+\.\d+/);

    const target = await server();
    await session(target, async (c) => {
      await c.call("SET", "stale", "must go");
      await c.call("SELECT", "9");
      await c.call("SET", "stale-in-db9", "must go too");
    });
    const restored = await capsule(
      ["redis", "--restore", "--yes", "--id", id, "--cluster", "types"],
      env(target),
    );
    assert.equal(restored.code, 0, restored.stderr);
    assert.match(restored.stderr, /64 keys, key counts match the backup/);

    assert.deepEqual(dumpDifferences(before, await dumpAll(target)), []);
    assert.equal(await call(target, "EXISTS", "stale"), 0);
    assert.equal(await role(target), "master");
    const masterauth = (await call(target, "CONFIG", "GET", "masterauth")) as Buffer[];
    assert.equal(masterauth[1]?.toString(), "", "the one-time masterauth token is removed");
    const ttl = await session(target, async (c) => {
      await c.call("SELECT", "2");
      return (await c.call("PTTL", "db2:ttl-long")) as number;
    });
    assert.ok(ttl > 3_500_000 && ttl <= 3_600_000, `TTL still in the future (${ttl} ms)`);

    const after = await describeBackup(id, "types");
    assert.equal(after.restores.length, 1);
    assert.equal(after.restores[0]?.result, "succeeded");
    const list = await capsule(["redis", "--list", "--cluster", "types", "-o", "json"], env(source));
    assert.deepEqual(
      (JSON.parse(list.stdout) as Array<{ backupId: string }>).map((e) => e.backupId),
      [id],
    );
  });

  test("GIVEN a disk-based source ($<length> form) WHEN downloaded THEN it is a plain dump.rdb that redis-check-rdb accepts", async () => {
    const src = await server({ "repl-diskless-sync": "no" });
    await fillEveryType(src);
    const id = await create(src, "disk");
    const statefile = await describeBackup(id, "disk");
    assert.equal(statefile.tool["rdbTransfer"], "disk");

    const dir = await mkdtemp(path.join(tmpdir(), "capsule-redis-dl-"));
    const file = path.join(dir, "dump.rdb");
    const dl = await capsule(
      ["redis", "--download", "--id", id, "--cluster", "disk", "--to", file],
      env(src),
    );
    assert.equal(dl.code, 0, dl.stderr);
    const bytes = await readFile(file);
    assert.equal(bytes.subarray(0, 5).toString(), "REDIS");
    assert.equal(bytes.length, statefile.artifact?.sizeBytes);
    const check = await exec("redis-check-rdb", [file]);
    assert.match(check.stdout, /RDB looks OK/);
  });

  test("GIVEN 1M keys WHEN backed up and restored THEN the counts match and sampled keys are identical", async () => {
    const src = await server();
    await call(
      src,
      "EVAL",
      "for i = 1, 1000000 do redis.call('SET', 'key:' .. i, 'value-' .. i) end " +
        "for i = 1, 1000 do redis.call('EXPIRE', 'key:' .. i, 86400) end",
      "0",
    );
    const id = await create(src, "million");
    const statefile = await describeBackup(id, "million");
    assert.deepEqual((statefile.fingerprint as { databases: unknown }).databases, {
      db0: { keys: 1_000_000, expires: 1000 },
    });
    const target = await server();
    const r = await capsule(["redis", "--restore", "--yes", "--id", id, "--cluster", "million"], env(target));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await call(target, "DBSIZE"), 1_000_000);
    for (const i of [1, 999, 1000, 1001, 500_000, 1_000_000]) {
      assert.equal(await text(target, "GET", `key:${i}`), `value-${i}`);
    }
    assert.ok(((await call(target, "TTL", "key:1")) as number) > 86_000);
    assert.equal(await call(target, "TTL", "key:1001"), -1);
  });

  test("GIVEN a password-protected source and a password-protected target WHEN backed up and restored THEN the data matches and no password is stored or printed", async () => {
    const src = await server({ requirepass: "source-secret-pw-1" });
    const srcAuth = { ...src, password: "source-secret-pw-1" };
    await fillEveryType(srcAuth);
    const id = await create(srcAuth, "auth");
    const statefile = await describeBackup(id, "auth");
    assert.doesNotMatch(JSON.stringify(statefile), /source-secret-pw-1/);

    const target = await server({ requirepass: "target-secret-pw-2" });
    const targetAuth = { ...target, password: "target-secret-pw-2" };
    const r = await capsule(
      ["redis", "--restore", "--yes", "--id", id, "--cluster", "auth", "--password-env", "TARGET_PASSWORD"],
      { ...env(target), TARGET_PASSWORD: "target-secret-pw-2" },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, /secret-pw/);
    assert.deepEqual(dumpDifferences(await dumpAll(srcAuth), await dumpAll(targetAuth)), []);
  });

  test("GIVEN ACL users with only the commands capsule needs WHEN backing up and restoring THEN both work", async () => {
    const src = await server();
    await call(
      src,
      "ACL",
      "SETUSER",
      "backup",
      "on",
      ">backup-acl-pw-1",
      "-@all",
      "+replconf",
      "+sync",
      "+info",
    );
    await call(src, "SET", "k", "v");
    const id = await (async () => {
      const r = await capsule(
        ["redis", "--create", "--cluster", "acl", "--user", "backup", "--password-env", "BACKUP_PW"],
        { ...env(src), BACKUP_PW: "backup-acl-pw-1" },
      );
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.trim();
    })();

    const target = await server();
    await call(
      target,
      ...["ACL", "SETUSER", "restore", "on", ">restore-acl-pw-2", "-@all", "+info", "+replicaof"],
      ...["+config|get", "+config|set"],
    );
    const r = await capsule(
      [
        "redis",
        "--restore",
        "--yes",
        "--id",
        id,
        "--cluster",
        "acl",
        "--user",
        "restore",
        "--password-env",
        "PW",
      ],
      { ...env(target), PW: "restore-acl-pw-2" },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await text(target, "GET", "k"), "v");
  });

  test("GIVEN a flipped byte in the stored artifact WHEN restoring THEN capsule refuses before touching the target", async () => {
    const src = await server();
    await fillEveryType(src);
    const id = await create(src, "corrupt");
    const ref = { cluster: "corrupt", engine: "redis" as const, backupId: id };
    const key = layout.artifactKey(prefixOf(store), ref, "dump.rdb");
    const bytes = Buffer.concat(await (await objectsOf(store).get(key)).toArray());
    const middle = Math.floor(bytes.length / 2);
    bytes[middle] = bytes[middle]! ^ 0x01;
    await objectsOf(store).put(key, bytes);

    const target = await server();
    await call(target, "SET", "precious", "data");
    const before = await dumpAll(target);
    const r = await capsule(["redis", "--restore", "--yes", "--id", id, "--cluster", "corrupt"], env(target));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /checksum mismatch/);
    assert.equal(
      r.stderr
        .trim()
        .split("\n")
        .filter((l) => l.startsWith("capsule:")).length,
      1,
    );
    assert.deepEqual(dumpDifferences(before, await dumpAll(target)), []);
    assert.equal(await role(target), "master");
  });

  describe("a bad snapshot from the server fails the run, never succeeded", () => {
    const rdb = tinyRdb();
    const mark = "m".repeat(40);
    const cases: Array<{ name: string; send: (s: import("node:net").Socket) => void; message: RegExp }> = [
      {
        name: "a $<length> payload cut short",
        send: (s) => s.end(Buffer.concat([Buffer.from(`\n\n$${rdb.length}\r\n`), rdb.subarray(0, 20)])),
        message: /closed the connection after 20 of \d+ snapshot bytes/,
      },
      {
        name: "an $EOF:<mark> payload without its mark",
        send: (s) => s.end(Buffer.concat([Buffer.from(`$EOF:${mark}\r\n`), rdb])),
        message: /closed the connection after \d+ snapshot bytes, before the end mark/,
      },
      {
        name: "a payload whose CRC-64 does not match",
        send: (s) => {
          const bad = Buffer.from(rdb);
          bad[12] = bad[12]! ^ 0x20;
          s.write(Buffer.concat([Buffer.from(`$EOF:${mark}\r\n`), bad, Buffer.from(mark)]));
        },
        message: /CRC-64 does not match/,
      },
      {
        name: "a payload that is not an RDB",
        send: (s) => s.write(`$16\r\nNOTREDIS00000000`),
        message: /not an RDB/,
      },
      {
        name: "a refused SYNC",
        send: (s) => s.write("-NOPERM this user has no permissions to run the 'sync' command\r\n"),
        message: /SYNC refused: NOPERM/,
      },
    ];
    for (const c of cases) {
      test(`GIVEN ${c.name} THEN the backup fails with one line and its statefile says failed`, async () => {
        const fake = await fakeMaster(c.send);
        try {
          const cluster = uniqueName("bad");
          const r = await capsule(
            ["redis", "--create", "--cluster", cluster],
            env({ host: "127.0.0.1", port: fake.port }),
          );
          assert.equal(r.code, 1, r.stderr);
          assert.match(r.stderr, c.message);
          assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
          const [entry] = await store.list({ cluster, engine: "redis" });
          assert.equal(entry?.state, "failed");
          assert.match(entry?.statefile?.error?.message ?? "", c.message);
        } finally {
          await fake.close();
        }
      });
    }
  });

  test("GIVEN the source goes away mid-backup THEN the run fails and is never succeeded", async () => {
    const src = await server({ "rdb-key-save-delay": "2000" });
    await call(src, "EVAL", "for i = 1, 3000 do redis.call('SET', 'key:' .. i, i) end", "0");
    const running = capsule(["redis", "--create", "--cluster", "gone"], env(src));
    let streaming = false;
    for (let i = 0; i < 100 && !streaming; i++) {
      await sleep(50);
      const [entry] = await store.list({ cluster: "gone", engine: "redis" });
      streaming = entry?.statefile?.phase === "streaming snapshot";
    }
    assert.ok(streaming, "the backup reached the streaming phase");
    await sleep(300);
    await src.stop();
    const r = await running;
    assert.equal(r.code, 1);
    assert.match(r.stderr, /closed the connection|connection failed|reset/);
    const [entry] = await store.list({ cluster: "gone", engine: "redis" });
    assert.equal(entry?.state, "failed");
  });

  test("GIVEN a target that cannot reach capsule WHEN restoring THEN it fails with the network requirement and the target's replication settings and data are as before", async () => {
    const src = await server();
    await call(src, "SET", "k", "from backup");
    const id = await create(src, "network");
    const entry = await store.get({ cluster: "network", engine: "redis", backupId: id });

    const target = await server();
    await call(target, "SET", "k", "target's own");
    await assert.rejects(
      restoreRedis({ host: target.host, port: target.port }, store.artifactSource(entry), {
        advertiseHost: "127.0.0.3", // loopback, but capsule listens on 127.0.0.1 only: refused
        connectTimeoutMs: 1500,
      }),
      /did not connect to capsule at 127\.0\.0\.3:\d+ .*must reach capsule.*the target is a master again/,
    );
    assert.equal(await role(target), "master");
    assert.equal(await text(target, "GET", "k"), "target's own");

    // A replica is refused unless --detach-replica; when a detached restore fails, it is a replica again.
    const replica = await server();
    await call(replica, "REPLICAOF", target.host, String(target.port));
    const refused = await capsule(
      ["redis", "--restore", "--yes", "--id", id, "--cluster", "network"],
      env(replica),
    );
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /is a replica of 127\.0\.0\.1:\d+: restore into its master, or pass --detach-replica/,
    );
    await assert.rejects(
      restoreRedis({ host: replica.host, port: replica.port }, store.artifactSource(entry), {
        advertiseHost: "127.0.0.3",
        connectTimeoutMs: 1500,
        detachReplica: true,
      }),
      new RegExp(`the target is a replica of 127\\.0\\.0\\.1:${target.port} again`),
    );
    const info = await text(replica, "INFO", "replication");
    assert.match(info, new RegExp(`master_port:${target.port}`));
  });

  describe("one clear line for each mistake", () => {
    let protectedServer: RedisServer;
    before(async () => {
      protectedServer = await server({ requirepass: "the-real-pw-123" });
    });
    const cases: Array<{ name: string; args: string[]; env: () => Record<string, string>; message: RegExp }> =
      [
        {
          name: "a wrong password",
          args: ["redis", "--create"],
          env: () => ({ ...env(protectedServer), REDISCLI_AUTH: "wrong-password-123" }),
          message: /redis:\/\/127\.0\.0\.1:\d+: authentication failed for user "default"/,
        },
        {
          name: "a missing password",
          args: ["redis", "--create"],
          env: () => env(protectedServer),
          message: /the server requires a password/,
        },
        {
          name: "an unreachable host",
          args: ["redis", "--create", "--host", "127.0.0.1", "--port", "9"],
          env: () => env(source),
          message: /redis:\/\/127\.0\.0\.1:9: cannot connect \(ECONNREFUSED\)/,
        },
        {
          name: "an unknown --id",
          args: ["redis", "--restore", "--yes", "--id", "redis-20200101T000000Z-000000"],
          env: () => env(source),
          message: /no backup redis-20200101T000000Z-000000 for cluster local/,
        },
        {
          name: "an unset --password-env variable",
          args: ["redis", "--create", "--password-env", "NO_SUCH_VARIABLE"],
          env: () => env(source),
          message: /--password-env NO_SUCH_VARIABLE: the variable NO_SUCH_VARIABLE is not set/,
        },
      ];
    for (const c of cases) {
      test(`GIVEN ${c.name} THEN capsule exits non-zero with one line that says so, and no secret`, async () => {
        const result = await capsule(c.args, c.env());
        assert.notEqual(result.code, 0);
        assert.match(result.stderr + result.stdout, c.message);
        if (result.code === 1) assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
        assert.doesNotMatch(result.stderr + result.stdout, /wrong-password-123|the-real-pw-123/);
      });
    }

    test("GIVEN a failed backup (wrong password) WHEN listed THEN it shows as failed with a redacted message", async () => {
      const result = await capsule(["redis", "--list", "--cluster", "local", "-o", "json"], env(source));
      const failed = (JSON.parse(result.stdout) as Statefile[]).filter((s) => s.status === "failed");
      assert.ok(failed.length >= 1);
      assert.doesNotMatch(JSON.stringify(failed), /wrong-password-123|the-real-pw-123/);
    });
  });
});
