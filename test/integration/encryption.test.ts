/**
 * Client-side encryption (age, docs/adr/0011) end to end, against the harness' real PostgreSQL, Redis and S3
 * (radosgw) and the Elasticsearch fake: round trips for all three engines with `--encrypt-to`, the statefile naming
 * public keys and the plaintext digest but never an identity, and the refusals — a missing or wrong identity, a
 * tampered ciphertext even when the attacker also rewrote the recorded checksum — each one line, with nothing
 * written to the target.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { generateX25519Identity, identityToRecipient } from "age-encryption";
import { openBackupStore } from "../../src/runtime/bucket.js";
import type { BackupStore } from "../../src/storage/backup-store.js";
import { layout } from "../../src/storage/layout.js";
import { type BackupRef } from "../../src/domain/backup.js";
import { parseStatefile, serializeStatefile } from "../../src/storage/statefile.js";
import { type Statefile } from "../../src/domain/statefile.js";
import { createBucket, s3Env, testServers, uniqueName, type TestServers } from "../harness/index.js";
import type { RedisServer } from "../harness/redis.js";
import { capsule } from "../support/cli.js";
import { assertSameIndex, esEnv, Fakes, seedCorpus } from "../support/es.js";
import { databaseDigest, pgEnv, sql } from "../support/pg.js";
import {
  call,
  dumpAll,
  dumpDifferences,
  fillEveryType,
  redisEnv,
  startTargetRedis,
  text,
} from "../support/redis.js";
import { objectsOf, prefixOf } from "../support/raw-bucket.js";

const exec = promisify(execFile);

interface Key {
  identity: string;
  recipient: string;
}

/** Error lines in a command's stderr (progress notes are other lines). */
function errorLines(stderr: string): number {
  return stderr.split("\n").filter((line) => line.startsWith("capsule: ")).length;
}

async function newKey(): Promise<Key> {
  const identity = await generateX25519Identity();
  return { identity, recipient: await identityToRecipient(identity) };
}

describe("client-side encryption", () => {
  let servers: TestServers;
  let bucket: string;
  let store: BackupStore;
  let operator: Key;
  let escrow: Key;
  let stranger: Key;
  const redisServers: RedisServer[] = [];
  const fakes = new Fakes();

  before(async () => {
    servers = await testServers();
    bucket = `s3://${uniqueName("crypt")}/capsule`;
    await createBucket(servers.s3, new URL(bucket).host);
    store = openBackupStore({ bucket }, s3Env(servers.s3));
    [operator, escrow, stranger] = await Promise.all([newKey(), newKey(), newKey()]);
  });

  after(async () => {
    await Promise.allSettled(redisServers.map((s) => s.stop()));
    await fakes.closeAll();
  });

  const encryptTo = () => ["--encrypt-to", operator.recipient, "--encrypt-to", escrow.recipient];

  async function statefileOf(ref: BackupRef): Promise<Statefile> {
    const entry = await store.get(ref);
    assert.ok(entry.statefile, entry.problem);
    return entry.statefile;
  }

  async function storedBytes(ref: BackupRef): Promise<Buffer> {
    const name = (await statefileOf(ref)).artifact!.name;
    return Buffer.concat(
      await (await objectsOf(store).get(layout.artifactKey(prefixOf(store), ref, name))).toArray(),
    );
  }

  /** Flips a byte in the middle of the stored ciphertext and, like an attacker with write access, re-records its digest. */
  async function tamper(ref: BackupRef, options: { rewriteChecksum: boolean }): Promise<void> {
    const statefile = await statefileOf(ref);
    const bytes = await storedBytes(ref);
    const middle = Math.floor(bytes.length / 2);
    bytes[middle] = bytes[middle]! ^ 0x01;
    await objectsOf(store).put(layout.artifactKey(prefixOf(store), ref, statefile.artifact!.name), bytes);
    if (options.rewriteChecksum) {
      statefile.artifact!.sha256 = createHash("sha256").update(bytes).digest("hex");
      const key = layout.statefileKey(prefixOf(store), ref);
      await objectsOf(store).put(key, serializeStatefile(parseStatefile(serializeStatefile(statefile), key)));
    }
  }

  describe("PostgreSQL", () => {
    const pg = (database: string, extra: Record<string, string> = {}) => ({
      ...s3Env(servers.s3),
      ...pgEnv(servers, database),
      CAPSULE_BUCKET: bucket,
      ...extra,
    });

    async function freshDatabase(): Promise<string> {
      const name = uniqueName("enc").replace(/-/g, "_");
      await sql(servers, "postgres", `CREATE DATABASE ${name}`);
      await sql(
        servers,
        name,
        "CREATE TABLE t (id int PRIMARY KEY, s text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g;",
      );
      return name;
    }

    async function databasesLike(prefix: string): Promise<string[]> {
      const rows = await sql(servers, "postgres", "SELECT datname FROM pg_database ORDER BY 1");
      return rows.map((r) => String(r["datname"])).filter((d) => d.startsWith(prefix));
    }

    test("GIVEN --encrypt-to two recipients WHEN backed up, downloaded, verified and restored with either identity THEN the bucket holds only ciphertext, the statefile names the public keys and both digests, and the data comes back", async () => {
      const db = await freshDatabase();
      const digest = await databaseDigest(servers, db);
      const created = await capsule(["pg", "--create", "--cluster", "enc", ...encryptTo()], pg(db));
      assert.equal(created.code, 0, created.stderr);
      const ref: BackupRef = { cluster: "enc", engine: "postgresql", backupId: created.stdout.trim() };

      const statefile = await statefileOf(ref);
      const artifact = statefile.artifact!;
      assert.equal(artifact.encryption.type, "age");
      assert.ok(artifact.encryption.type === "age");
      assert.deepEqual(artifact.encryption.recipients, [operator.recipient, escrow.recipient]);
      const stored = await storedBytes(ref);
      assert.equal(stored.subarray(0, 21).toString(), "age-encryption.org/v1");
      assert.equal(artifact.sizeBytes, stored.length);
      assert.equal(artifact.sha256, createHash("sha256").update(stored).digest("hex"));
      assert.notEqual(artifact.encryption.plaintextSha256, artifact.sha256);
      assert.ok(artifact.encryption.plaintextBytes < stored.length);
      const text = serializeStatefile(statefile);
      for (const identity of [operator.identity, escrow.identity]) assert.ok(!text.includes(identity));

      // The download is the plaintext pg_restore reads, proven against the recorded plaintext digest.
      const dir = await mkdtemp(path.join(tmpdir(), "capsule-enc-"));
      const file = path.join(dir, "dump.pgcustom");
      const dl = await capsule(
        ["pg", "--download", "--id", ref.backupId, "--cluster", "enc", "--to", file],
        pg(db, { CAPSULE_AGE_IDENTITY: operator.identity }),
      );
      assert.equal(dl.code, 0, dl.stderr);
      const listed = await exec("pg_restore", ["--list", file]);
      assert.match(listed.stdout, /TABLE public t /);

      // The escrow key opens it too, from an identity file as age-keygen writes one.
      const identityFile = path.join(dir, "escrow.txt");
      await writeFile(
        identityFile,
        `# created: 2026-01-01T00:00:00Z\n# public key: ${escrow.recipient}\n${escrow.identity}\n`,
        { mode: 0o600 },
      );
      const verified = await capsule(
        ["pg", "--verify", "--id", ref.backupId, "--cluster", "enc"],
        pg(db, { CAPSULE_AGE_IDENTITY_FILE: identityFile }),
      );
      assert.equal(verified.code, 0, verified.stderr);
      assert.match(
        (await statefileOf(ref)).verification.method ?? "",
        /^sha256, age decryption, sha256, then restore into a throwaway PostgreSQL/,
      );

      await sql(servers, db, "DELETE FROM t WHERE id % 3 = 0");
      const restored = await capsule(
        ["pg", "--restore", "--yes", "--id", ref.backupId, "--cluster", "enc"],
        pg(db, { CAPSULE_AGE_IDENTITY_FILE: identityFile }),
      );
      assert.equal(restored.code, 0, restored.stderr);
      assert.deepEqual(await databaseDigest(servers, db), digest);
      for (const out of [created, dl, verified, restored]) {
        assert.ok(!(out.stdout + out.stderr).includes("AGE-SECRET-KEY"), "no identity in any output");
      }
    });

    test("GIVEN an encrypted backup WHEN restoring with no identity, a stranger's identity or a non-key THEN each is one line naming the variable, and no database is created or changed", async () => {
      const db = await freshDatabase();
      const created = await capsule(["pg", "--create", "--cluster", "enc", ...encryptTo()], pg(db));
      assert.equal(created.code, 0, created.stderr);
      const id = created.stdout.trim();
      await sql(servers, db, "INSERT INTO t VALUES (-1, 'live change')");
      const before = await databaseDigest(servers, db);

      const cases: Array<{ env: Record<string, string>; expect: RegExp }> = [
        { env: {}, expect: /is encrypted to age1.*: set CAPSULE_AGE_IDENTITY to a matching age identity/ },
        {
          env: { CAPSULE_AGE_IDENTITY: stranger.identity },
          expect: /but the identity in CAPSULE_AGE_IDENTITY is for age1/,
        },
        {
          env: { CAPSULE_AGE_IDENTITY: "AGE-SECRET-KEY-1NOTAKEY" },
          expect: /CAPSULE_AGE_IDENTITY: not an age identity/,
        },
        {
          env: { CAPSULE_AGE_IDENTITY_FILE: "/nonexistent/identity.txt" },
          expect: /CAPSULE_AGE_IDENTITY_FILE: cannot read \/nonexistent\/identity.txt \(ENOENT\)/,
        },
      ];
      for (const c of cases) {
        for (const mode of [[], ["--in-place"]]) {
          const r = await capsule(
            ["pg", "--restore", "--yes", "--id", id, "--cluster", "enc", ...mode],
            pg(db, c.env),
          );
          assert.equal(r.code, 1, r.stderr);
          assert.match(r.stderr, c.expect);
          assert.equal(errorLines(r.stderr), 1, r.stderr);
          assert.ok(!r.stderr.includes(stranger.identity));
        }
      }
      assert.deepEqual(await databaseDigest(servers, db), before);
      assert.deepEqual(await databasesLike(db), [db]);
    });

    test("GIVEN a flipped byte in the ciphertext, with and without its recorded checksum rewritten WHEN restoring or verifying THEN it is refused as tampered and nothing is written", async () => {
      const db = await freshDatabase();
      const withKey = (extra: Record<string, string> = {}) =>
        pg(db, { CAPSULE_AGE_IDENTITY: operator.identity, ...extra });
      for (const rewriteChecksum of [false, true]) {
        const created = await capsule(["pg", "--create", "--cluster", "enc", ...encryptTo()], pg(db));
        assert.equal(created.code, 0, created.stderr);
        const ref: BackupRef = { cluster: "enc", engine: "postgresql", backupId: created.stdout.trim() };
        await tamper(ref, { rewriteChecksum });
        await sql(servers, db, `INSERT INTO t VALUES (-${rewriteChecksum ? 2 : 3}, 'live change')`);
        const before = await databaseDigest(servers, db);
        for (const mode of [[], ["--in-place"]]) {
          const r = await capsule(
            ["pg", "--restore", "--yes", "--id", ref.backupId, "--cluster", "enc", ...mode],
            withKey(),
          );
          assert.equal(r.code, 1, `restore ${mode.join(" ")} must fail`);
          assert.match(
            r.stderr,
            rewriteChecksum
              ? /fails authentication, refused as tampered or corrupt/
              : /tampered|checksum mismatch/,
          );
          assert.equal(errorLines(r.stderr), 1, r.stderr);
        }
        const verify = await capsule(["pg", "--verify", "--id", ref.backupId, "--cluster", "enc"], withKey());
        assert.equal(verify.code, 1);
        assert.equal((await statefileOf(ref)).verification.status, "failed");
        assert.deepEqual(await databaseDigest(servers, db), before);
        assert.deepEqual(await databasesLike(db), [db]);
      }
    });
  });

  test("GIVEN Redis with every data type WHEN backed up encrypted and restored into another server THEN every key is back; with a stranger's identity the target is untouched", async () => {
    const source = await startTargetRedis();
    const target = await startTargetRedis();
    redisServers.push(source, target);
    await fillEveryType(source);
    const expected = await dumpAll(source);
    const env = (server: RedisServer, extra: Record<string, string> = {}) => ({
      ...s3Env(servers.s3),
      ...redisEnv(server),
      CAPSULE_BUCKET: bucket,
      ...extra,
    });
    const created = await capsule(["redis", "--create", "--cluster", "enc", ...encryptTo()], env(source));
    assert.equal(created.code, 0, created.stderr);
    const ref: BackupRef = { cluster: "enc", engine: "redis", backupId: created.stdout.trim() };
    const artifact = (await statefileOf(ref)).artifact!;
    assert.equal(artifact.encryption.type, "age");
    assert.equal((await storedBytes(ref)).subarray(0, 21).toString(), "age-encryption.org/v1");

    await call(target, "SET", "sentinel", "still here");
    const refused = await capsule(
      ["redis", "--restore", "--yes", "--id", ref.backupId, "--cluster", "enc"],
      env(target, { CAPSULE_AGE_IDENTITY: stranger.identity }),
    );
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /but the identity in CAPSULE_AGE_IDENTITY is for age1/);
    assert.equal(await text(target, "GET", "sentinel"), "still here");

    const restored = await capsule(
      ["redis", "--restore", "--yes", "--id", ref.backupId, "--cluster", "enc"],
      env(target, { CAPSULE_AGE_IDENTITY: escrow.identity }),
    );
    assert.equal(restored.code, 0, restored.stderr);
    assert.deepEqual(dumpDifferences(expected, await dumpAll(target)), []);
  });

  test("GIVEN Elasticsearch WHEN backed up encrypted and restored THEN every index is back; a tampered ciphertext is refused before the target sees a request", async () => {
    const source = await fakes.start("8");
    seedCorpus(source, { products: 500 });
    const env = (fake: typeof source, extra: Record<string, string> = {}) => ({
      ...s3Env(servers.s3),
      ...esEnv(fake),
      CAPSULE_BUCKET: bucket,
      ...extra,
    });
    const created = await capsule(["es", "--create", "--cluster", "enc", ...encryptTo()], env(source));
    assert.equal(created.code, 0, created.stderr);
    const ref: BackupRef = { cluster: "enc", engine: "elasticsearch", backupId: created.stdout.trim() };
    assert.equal((await statefileOf(ref)).artifact!.encryption.type, "age");

    const target = await fakes.start("8");
    const restored = await capsule(
      ["es", "--restore", "--yes", "--id", ref.backupId, "--cluster", "enc"],
      env(target, { CAPSULE_AGE_IDENTITY: operator.identity }),
    );
    assert.equal(restored.code, 0, restored.stderr);
    for (const name of ["blobs", "logs-2024", "products", "unicode"]) assertSameIndex(source, target, name);

    await tamper(ref, { rewriteChecksum: true });
    const untouched = await fakes.start("8");
    const refused = await capsule(
      ["es", "--restore", "--yes", "--id", ref.backupId, "--cluster", "enc"],
      env(untouched, { CAPSULE_AGE_IDENTITY: operator.identity }),
    );
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /fails authentication, refused as tampered or corrupt/);
    assert.deepEqual(untouched.requests, [], "the target saw no request");
  });

  test("GIVEN --sse against radosgw, which has no KMS backend here WHEN creating THEN the header reaches the server, whose refusal is one line before any data is read; bad --sse values are one line too", async () => {
    const env = { ...s3Env(servers.s3), ...redisEnv(servers.redis), CAPSULE_BUCKET: bucket };
    for (const sse of [
      ["--sse", "AES256"],
      ["--sse", "aws:kms", "--sse-kms-key-id", "alias/k"],
    ]) {
      const r = await capsule(["redis", "--create", "--cluster", "sse", ...sse], env);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /^capsule: CAPSULE_STORE_ERROR: s3:\/\/.*: put capsule\/sse\/redis\/.*\/statefile\.json: InvalidRequest/,
      );
      assert.equal(errorLines(r.stderr), 1, r.stderr);
    }
    assert.deepEqual(await store.list({ cluster: "sse" }), [], "not even a running statefile was written");
    const plain = await capsule(["redis", "--create", "--cluster", "sse"], env);
    assert.equal(plain.code, 0, plain.stderr);
    for (const [args, message] of [
      [["--sse", "DES"], /--sse must be AES256 or aws:kms \(got "DES"\)/],
      [["--sse", "AES256", "--sse-kms-key-id", "k"], /--sse-kms-key-id needs --sse aws:kms/],
    ] as const) {
      const r = await capsule(["redis", "--create", "--cluster", "sse", ...args], env);
      assert.equal(r.code, 1);
      assert.match(r.stderr, message);
    }
  });

  test("GIVEN --encrypt-to with a secret key or garbage WHEN creating THEN one line names the flag and never echoes the secret", async () => {
    const r = await capsule(["redis", "--create", "--cluster", "enc", "--encrypt-to", operator.identity], {
      ...s3Env(servers.s3),
      ...redisEnv(servers.redis),
      CAPSULE_BUCKET: bucket,
    });
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /--encrypt-to\[0\] is not an age recipient \(an identity \(secret key\); give its public key\)/,
    );
    assert.ok(!r.stderr.includes(operator.identity));
    const bad = await capsule(["redis", "--create", "--cluster", "enc", "--encrypt-to", "age1xyz"], {
      ...s3Env(servers.s3),
      ...redisEnv(servers.redis),
      CAPSULE_BUCKET: bucket,
    });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--encrypt-to\[0\] is not an age recipient/);
  });
});
