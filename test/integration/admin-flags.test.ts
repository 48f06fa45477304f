/**
 * Admin commands do what they say and nothing else (issue 16, items 7–10, 12, 17): a flag the chosen action would
 * not honour is refused before any I/O, ids cannot climb out of their engine's folder, hosts carrying credentials
 * never reach a statefile, a download's destination is checked before a byte is fetched, every user-caused error
 * is one line with its stable code, and a cluster's bucket honours --endpoint and --sse. Real PostgreSQL, Redis,
 * radosgw and file:// buckets; Kubernetes is the wire-level fake.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { redactSource } from "../../src/redact.js";
import { openBackupStore } from "../../src/runtime/bucket.js";
import type { BackupStore } from "../../src/storage/backup-store.js";
import { layout } from "../../src/storage/layout.js";
import { serializeStatefile } from "../../src/storage/statefile.js";
import { cnvrgApp, cnvrgStorageSecret } from "../fakes/cnvrgapps.js";
import { FakeKubeApiServer } from "../fakes/kube-apiserver.js";
import { createBucket, s3Env, testServers, uniqueName, type TestServers } from "../harness/index.js";
import { capsule, type CliResult } from "../support/cli.js";
import { filesUnder } from "../support/files.js";
import { statefile } from "../support/entries.js";
import { pgEnv, sql } from "../support/pg.js";
import { objectsOf, prefixOf } from "../support/raw-bucket.js";

/** Every file under `dir` with its bytes, for "nothing was written" and "no secret was stored" checks. */
async function contentsUnder(dir: string): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (const file of await filesUnder(dir)) found.set(path.relative(dir, file), await readFile(file, "utf8"));
  return found;
}

function oneUsageLine(result: CliResult, flag: string): void {
  assert.equal(result.code, 2, result.stderr);
  assert.equal(result.stdout, "");
  assert.equal(result.stderr.trimEnd().split("\n").length, 1, result.stderr);
  assert.match(result.stderr, /^capsule: CAPSULE_USAGE: /);
  assert.ok(result.stderr.includes(flag), `${JSON.stringify(result.stderr)} names ${flag}`);
}

describe("admin commands do what they say and nothing else", () => {
  let servers: TestServers;
  let root: string;

  before(async () => {
    servers = await testServers();
    root = await mkdtemp(path.join(tmpdir(), "capsule-admin-flags-"));
  });
  after(() => rm(root, { recursive: true, force: true }));

  /** A file:// bucket of its own, with the store capsule would open on it. */
  async function fileBucket(): Promise<{ url: string; dir: string; store: BackupStore }> {
    const dir = path.join(root, uniqueName("bucket"));
    await mkdir(dir);
    const url = `file://${dir}`;
    return { url, dir, store: openBackupStore({ bucket: url }, {}) };
  }

  /** A succeeded backup's statefile in `store` (no artifact: the admin actions here never read one). */
  async function putStatefile(store: BackupStore, engine: "postgresql" | "redis" = "postgresql") {
    const s = statefile({ cluster: "local", engine });
    await objectsOf(store).put(layout.statefileKey(prefixOf(store), s), serializeStatefile(s));
    return { cluster: s.cluster, engine: s.engine, backupId: s.backupId };
  }

  describe("item 7: a flag the action does not take is refused", () => {
    test("GIVEN a succeeded backup WHEN --delete --dry-run --yes THEN exit 2 names --dry-run and the backup is still there", async () => {
      const { url, store } = await fileBucket();
      const ref = await putStatefile(store);
      const result = await capsule([
        "pg",
        "--delete",
        "--dry-run",
        "--yes",
        "--id",
        ref.backupId,
        "--bucket",
        url,
      ]);
      oneUsageLine(result, "--dry-run");
      assert.equal(
        result.stderr,
        "capsule: CAPSULE_USAGE: --dry-run does not apply to --delete (see: capsule pg --help)\n",
      );
      assert.equal((await store.get(ref)).state, "succeeded");
    });

    for (const [args, flag] of [
      [["pg", "--restore", "--yes", "--id", "ID", "--to", "x.dump"], "--to"],
      [["pg", "--list", "--keep-last", "1"], "--keep-last"],
      [["pg", "--describe", "--id", "ID", "--yes"], "--yes"],
      [["pg", "--verify", "--id", "latest", "--host", "db"], "--host"],
      [["pg", "--delete", "--yes", "--id", "ID", "-o", "json"], "-o"],
      [["redis", "--create", "--listen-port", "7000"], "--listen-port"],
      [["redis", "--list", "--encrypt-to", "age1xyz"], "--encrypt-to"],
      [["es", "--list", "--replace"], "--replace"],
      [["es", "--download", "--id", "ID", "--to", "x", "--indices", "logs"], "--indices"],
    ] as const) {
      test(`GIVEN capsule ${args.join(" ")} WHEN run THEN exit 2 and one line names ${flag}, before any I/O`, async () => {
        const { url, dir } = await fileBucket();
        const result = await capsule([...args, "--bucket", url]);
        oneUsageLine(result, flag);
        assert.deepEqual([...(await contentsUnder(dir)).keys()], [], "nothing was written");
      });
    }

    test("GIVEN bad flags of every kind WHEN run THEN each is a usage error with exit 2", async () => {
      for (const [args, flag] of [
        [["pg", "--bogus"], "--bogus"],
        [["pg", "--list", "--delete"], "--list"],
        [["pg", "--prune", "--keep-last", "zero", "--bucket", "file:///nonexistent"], "--keep-last"],
        [["bogus"], "bogus"],
      ] as const) {
        oneUsageLine(await capsule([...args]), flag);
      }
    });
  });

  describe("item 8: every id and name in a key is one safe segment", () => {
    test("GIVEN a PostgreSQL backup WHEN capsule redis --delete --id ../postgresql/ID THEN exit 2 and the backup is untouched", async () => {
      const { url, dir, store } = await fileBucket();
      const ref = await putStatefile(store);
      const before = await contentsUnder(dir);
      for (const args of [
        ["redis", "--delete", "--yes", "--id", `../postgresql/${ref.backupId}`],
        ["redis", "--describe", "--id", `../postgresql/${ref.backupId}`],
        ["pg", "--delete", "--yes", "--id", ref.backupId, "--cluster", "../local"],
        ["pg", "--prune", "--yes", "--target", "../db"],
      ]) {
        const result = await capsule([...args, "--bucket", url]);
        oneUsageLine(
          result,
          args.includes("--cluster") ? "--cluster" : args.includes("--target") ? "--target" : "--id",
        );
      }
      assert.deepEqual(await contentsUnder(dir), before);
    });

    test("GIVEN an id with ../ WHEN the store itself is asked to delete it THEN the key layout refuses it and nothing is deleted", async () => {
      const { dir, store } = await fileBucket();
      const ref = await putStatefile(store);
      const before = await contentsUnder(dir);
      const escaping = {
        cluster: "local",
        engine: "redis" as const,
        backupId: `../postgresql/${ref.backupId}`,
      };
      await assert.rejects(store.delete(escaping), { code: "CAPSULE_CONFIG" });
      await assert.rejects(store.get(escaping), { code: "CAPSULE_CONFIG" });
      assert.throws(() => layout.clusterPrefix(prefixOf(store), ".."), { code: "CAPSULE_CONFIG" });
      assert.deepEqual(await contentsUnder(dir), before);
    });
  });

  describe("item 9: credentials never travel in a host flag", () => {
    const secret = "s3cretpw-in-host";

    for (const [args, flag] of [
      [["pg", "--create", "--host", `app:${secret}@127.0.0.1`], "--host"],
      [["pg", "--create", "--host", `postgresql://app:${secret}@127.0.0.1:5432/app`], "--host"],
      [["redis", "--create", "--host", `:${secret}@127.0.0.1`], "--host"],
      [
        ["redis", "--restore", "--yes", "--id", "ID", "--host", `redis://default:${secret}@127.0.0.1`],
        "--host",
      ],
    ] as const) {
      test(`GIVEN ${args.slice(0, 2).join(" ")} --host with a password WHEN run THEN exit 2, the secret is nowhere and nothing is written`, async () => {
        const { url, dir } = await fileBucket();
        const result = await capsule([...args, "--bucket", url, "--cluster", "creds"]);
        oneUsageLine(result, flag);
        assert.ok(!result.stderr.includes(secret), result.stderr);
        const stored = await contentsUnder(dir);
        assert.deepEqual([...stored.keys()], [], "no statefile was written");
      });
    }

    test("GIVEN PGHOST with a password WHEN backing up THEN the variable is named and nothing is written", async () => {
      const { url, dir } = await fileBucket();
      const result = await capsule(["pg", "--create", "--bucket", url], {
        PGHOST: `app:${secret}@127.0.0.1`,
      });
      oneUsageLine(result, "PGHOST");
      assert.ok(!result.stderr.includes(secret));
      assert.deepEqual([...(await contentsUnder(dir)).keys()], []);
    });

    test("GIVEN --endpoint with credentials WHEN run THEN it is refused in one line before any request", async () => {
      const { url } = await fileBucket();
      const result = await capsule([
        "pg",
        "--list",
        "--bucket",
        url,
        "--endpoint",
        `http://key:${secret}@127.0.0.1:9`,
      ]);
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /^capsule: CAPSULE_CONFIG: --endpoint must not carry credentials/);
      assert.ok(!result.stderr.includes(secret));
    });

    test("GIVEN --endpoint or --sse with a file:// bucket WHEN run THEN they are refused, not ignored", async () => {
      const { url, store } = await fileBucket();
      const ref = await putStatefile(store);
      for (const extra of [
        ["--endpoint", "http://127.0.0.1:9"],
        ["--region", "eu-west-1"],
        ["--sse", "AES256"],
      ]) {
        const result = await capsule([
          "pg",
          "--delete",
          "--yes",
          "--id",
          ref.backupId,
          "--bucket",
          url,
          ...extra,
        ]);
        assert.equal(result.code, 1, result.stderr);
        assert.match(
          result.stderr,
          new RegExp(`^capsule: CAPSULE_CONFIG: ${extra[0]}: only for s3:// buckets`),
        );
      }
      assert.equal((await store.get(ref)).state, "succeeded");
    });

    test("GIVEN a source with credentials in its host WHEN redacted for a statefile THEN only the host is kept", () => {
      assert.deepEqual(redactSource({ host: `app:${secret}@db.internal`, port: 5432, database: "app" }), {
        host: "db.internal",
        port: 5432,
        database: "app",
      });
      assert.deepEqual(redactSource({ host: `postgresql://app:${secret}@db/app` }), {
        host: "postgresql://db/app",
      });
      assert.deepEqual(redactSource({ host: "db", database: "app@2024" }), {
        host: "db",
        database: "app@2024",
      });
    });
  });

  describe("item 10: a download's destination is checked before the download", () => {
    async function backupWithArtifact(store: BackupStore, bytes: Buffer) {
      const run = await store.begin({
        cluster: "local",
        target: "cache",
        engine: "redis",
        trigger: { type: "manual" },
        source: { host: "redis", port: 6379 },
        tool: {},
      });
      const uploaded = await run.uploadArtifact("dump.rdb", Readable.from([bytes]));
      await run.commit({ artifact: { name: "dump.rdb", format: "rdb", compression: "none", ...uploaded } });
      return run.ref;
    }

    test("GIVEN --to a directory or a path in a missing directory WHEN downloading THEN one CAPSULE_LOCAL_FILE line, exit 1, nothing left behind", async () => {
      const { url, store } = await fileBucket();
      const ref = await backupWithArtifact(store, Buffer.from("REDIS0011 pretend rdb"));
      const into = await mkdtemp(path.join(root, "into-"));
      const cases = [
        [into, /^capsule: CAPSULE_LOCAL_FILE: --to .*: is a directory/],
        [
          path.join(into, "missing", "dump.rdb"),
          /^capsule: CAPSULE_LOCAL_FILE: --to .*: the directory .*missing does not exist/,
        ],
      ] as const;
      for (const [to, message] of cases) {
        const result = await capsule([
          "redis",
          "--download",
          "--id",
          ref.backupId,
          "--to",
          to,
          "--bucket",
          url,
        ]);
        assert.equal(result.code, 1, result.stderr);
        assert.equal(result.stderr.trimEnd().split("\n").length, 1, result.stderr);
        assert.match(result.stderr, message);
        assert.doesNotMatch(result.stderr, /internal error/);
      }
      assert.deepEqual(await readdir(into), [], "no temporary file is left");

      // The artifact gone: the destination is still what is refused, so it was checked before anything was read.
      await objectsOf(store).delete(layout.artifactKey(prefixOf(store), ref, "dump.rdb"));
      const first = await capsule([
        "redis",
        "--download",
        "--id",
        ref.backupId,
        "--to",
        into,
        "--bucket",
        url,
      ]);
      assert.match(first.stderr, /^capsule: CAPSULE_LOCAL_FILE: --to .*: is a directory/);
    });

    test("GIVEN --to a file in an existing directory WHEN downloading THEN the artifact is written whole", async () => {
      const { url, store } = await fileBucket();
      const bytes = Buffer.from("REDIS0011 another pretend rdb");
      const ref = await backupWithArtifact(store, bytes);
      const to = path.join(await mkdtemp(path.join(root, "into-")), "dump.rdb");
      const result = await capsule([
        "redis",
        "--download",
        "--id",
        ref.backupId,
        "--to",
        to,
        "--bucket",
        url,
      ]);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(await readFile(to), bytes);
    });
  });

  describe("item 12: every user-caused error is one line with its code", () => {
    test("GIVEN a server that wants a password and no PGPASSWORD WHEN backing up THEN the line says to set PGPASSWORD", async () => {
      const { url } = await fileBucket();
      const noPassword: Record<string, string> = pgEnv(servers, "postgres");
      delete noPassword["PGPASSWORD"];
      const result = await capsule(["pg", "--create", "--bucket", url, "--host", "127.0.0.1"], noPassword);
      assert.equal(result.code, 1, result.stderr);
      assert.equal(result.stderr.trimEnd().split("\n").length, 1, result.stderr);
      assert.match(result.stderr, /^capsule: CAPSULE_DATABASE_ERROR: .*set PGPASSWORD/);
      assert.doesNotMatch(result.stderr, /SASL/);
    });

    test("GIVEN a database named with spaces WHEN backing up without --target THEN one line asks for --target, and with it the backup succeeds", async () => {
      const { url, store } = await fileBucket();
      const database = `${uniqueName("app")} with space`;
      await sql(servers, "postgres", `CREATE DATABASE "${database}"`);
      await sql(servers, database, "CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2);");
      const env = pgEnv(servers, database);
      const refused = await capsule(["pg", "--create", "--bucket", url], env);
      oneUsageLine(refused, "pass --target NAME");
      assert.doesNotMatch(refused.stderr, /--target "/, "the operator gave no --target to blame");
      assert.deepEqual(await store.list({ cluster: "local", engine: "postgresql" }), []);

      const named = await capsule(["pg", "--create", "--bucket", url, "--target", "app-with-space"], env);
      assert.equal(named.code, 0, named.stderr);
      const [entry] = await store.list({ cluster: "local", engine: "postgresql" });
      assert.equal(entry?.state, "succeeded");
      assert.equal(entry?.statefile?.target, "app-with-space");
      assert.equal(entry?.statefile?.source.database, database);
    });

    test("GIVEN capsule run with a connection setting the engine refuses WHEN run THEN one CAPSULE_CONFIG line and exit 1, not an internal error", async () => {
      const { url, dir } = await fileBucket();
      const target = {
        version: 1,
        cluster: "adm.flags",
        target: "pg",
        engine: "postgresql",
        namespace: "apps",
        connection: { host: servers.pg.host, port: servers.pg.port, database: "postgres" },
        retention: { keepLast: 1 },
        storage: { prefix: "capsule" },
      };
      const result = await capsule(["run", "--cluster", "adm.flags", "--target", "pg"], {
        ...pgEnv(servers, "postgres"),
        CAPSULE_TARGET: JSON.stringify(target),
        CAPSULE_BUCKET: url,
        PGSSLMODE: "prefer",
      });
      assert.equal(result.code, 1, result.stderr);
      assert.equal(result.stderr.trimEnd().split("\n").length, 1, result.stderr);
      assert.match(
        result.stderr,
        /^capsule: CAPSULE_CONFIG: PGSSLMODE must be disable, require, verify-ca or verify-full/,
      );
      assert.deepEqual([...(await contentsUnder(dir)).keys()], []);
    });
  });

  describe("issue 17: with -o json|yaml an error is also a document on stdout", () => {
    test("GIVEN a backup id that does not exist WHEN --describe -o json, then -o yaml THEN stdout holds the error's code and message, stderr the one line", async () => {
      const { url } = await fileBucket();
      const json = await capsule(["pg", "--describe", "--id", "nope", "-o", "json", "--bucket", url]);
      assert.equal(json.code, 1, json.stderr);
      assert.match(json.stderr, /^capsule: CAPSULE_NOT_FOUND: /);
      const { error } = JSON.parse(json.stdout) as { error: { code: string; message: string } };
      assert.equal(error.code, "CAPSULE_NOT_FOUND");
      assert.equal(`capsule: ${error.code}: ${error.message}\n`, json.stderr);
      const yaml = await capsule(["pg", "--describe", "--id", "nope", "-o", "yaml", "--bucket", url]);
      assert.match(yaml.stdout, /^error:\n {2}code: CAPSULE_NOT_FOUND\n {2}message: /);
    });
  });

  describe("item 12: capsule run's log carries the code too", () => {
    test("GIVEN capsule run with a wrong password WHEN the backup fails THEN the JSON log line and the last line both carry CAPSULE_DATABASE_ERROR", async () => {
      const { url } = await fileBucket();
      const target = {
        version: 1,
        cluster: "adm.flags",
        target: "pg",
        engine: "postgresql",
        namespace: "apps",
        connection: { host: servers.pg.host, port: servers.pg.port, database: "postgres" },
        retention: { keepLast: 1 },
        storage: { prefix: "capsule" },
      };
      const result = await capsule(["run"], {
        ...pgEnv(servers, "postgres"),
        PGPASSWORD: "not-the-password",
        CAPSULE_TARGET: JSON.stringify(target),
        CAPSULE_BUCKET: url,
      });
      assert.equal(result.code, 1, result.stderr);
      const lines = result.stderr.trimEnd().split("\n");
      const failed = lines
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as { msg: string; code?: string })
        .find((l) => l.msg === "backup failed");
      assert.equal(failed?.code, "CAPSULE_DATABASE_ERROR", result.stderr);
      assert.match(lines.at(-1)!, /^capsule: CAPSULE_DATABASE_ERROR: .*authentication failed/);
    });
  });

  describe("item 17: a cluster's bucket honours --endpoint, --region and --sse", () => {
    let fake: FakeKubeApiServer;
    let kubeconfig: string;
    let backupId: string;
    let bucket: string;

    before(async () => {
      bucket = uniqueName("adm-cluster");
      await createBucket(servers.s3, bucket);
      const store = openBackupStore({ bucket: `s3://${bucket}/capsule` }, s3Env(servers.s3));
      const s = statefile({ cluster: "ml.cnvrg" });
      backupId = s.backupId;
      await objectsOf(store).put(layout.statefileKey(prefixOf(store), s), serializeStatefile(s));
      fake = await new FakeKubeApiServer().start();
      fake.put("cnvrgapps", cnvrgApp("ml", "cnvrg"));
      // The Secret's endpoint is the in-cluster one, which a laptop cannot reach.
      fake.putSecret("ml", "cp-object-storage", {
        ...cnvrgStorageSecret(servers.s3, bucket),
        CNVRG_STORAGE_ENDPOINT: "http://127.0.0.1:9",
      });
      kubeconfig = await fake.kubeconfigFile();
    });
    after(() => fake.close());

    test("GIVEN a Secret whose endpoint is unreachable from here WHEN --endpoint names a reachable one THEN the listing uses it", async () => {
      const result = await capsule(["pg", "--list", "-o", "json", "--endpoint", servers.s3.endpoint], {
        KUBECONFIG: kubeconfig,
      });
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(
        (JSON.parse(result.stdout) as Array<{ backupId: string }>).map((e) => e.backupId),
        [backupId],
      );
    });

    test("GIVEN --sse WHEN deleting from a cluster's bucket THEN the store sees the request (radosgw refuses it) and the backup stays", async () => {
      const result = await capsule(
        ["pg", "--delete", "--yes", "--id", backupId, "--endpoint", servers.s3.endpoint, "--sse", "AES256"],
        { KUBECONFIG: kubeconfig },
      );
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /InvalidRequest/);
      const store = openBackupStore({ bucket: `s3://${bucket}/capsule` }, s3Env(servers.s3));
      assert.equal(
        (await store.get({ cluster: "ml.cnvrg", engine: "postgresql", backupId })).state,
        "succeeded",
      );
    });

    test("GIVEN --sse-kms-key-id without --sse aws:kms WHEN deleting from a cluster's bucket THEN it is refused, not dropped, and the backup stays", async () => {
      const result = await capsule(
        [
          "pg",
          "--delete",
          "--yes",
          "--id",
          backupId,
          "--endpoint",
          servers.s3.endpoint,
          "--sse-kms-key-id",
          "alias/k",
        ],
        { KUBECONFIG: kubeconfig },
      );
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /^capsule: CAPSULE_CONFIG: --sse-kms-key-id needs --sse aws:kms/);
      const store = openBackupStore({ bucket: `s3://${bucket}/capsule` }, s3Env(servers.s3));
      assert.equal(
        (await store.get({ cluster: "ml.cnvrg", engine: "postgresql", backupId })).state,
        "succeeded",
      );
    });
  });
});
