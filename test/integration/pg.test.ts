/**
 * PostgreSQL end to end against the harness' real server and real S3 (radosgw): backup, list, download, the
 * non-destructive restore and its refusals. Data is compared with per-table digests, not just counts.
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { before, describe, test } from "node:test";
import { openBackupStore } from "../../src/runtime/bucket.js";
import { layout } from "../../src/storage/layout.js";
import type { Statefile } from "../../src/domain/statefile.js";
import { createBucket, s3Env, testServers, uniqueName, type TestServers } from "../harness/index.js";
import { capsule } from "../support/cli.js";
import { databaseDigest, pgEnv, RICH_SCHEMA, sql } from "../support/pg.js";
import { objectsOf, prefixOf } from "../support/raw-bucket.js";

const exec = promisify(execFile);

describe("capsule pg", () => {
  let servers: TestServers;
  let bucket: string;
  let env: (database: string) => Record<string, string>;

  before(async () => {
    servers = await testServers();
    bucket = `s3://${uniqueName("pg")}/capsule`;
    await createBucket(servers.s3, new URL(bucket).host);
    env = (database) => ({ ...s3Env(servers.s3), ...pgEnv(servers, database), CAPSULE_BUCKET: bucket });
  });

  async function freshDatabase(schema: string): Promise<string> {
    const name = uniqueName("db").replace(/-/g, "_");
    await sql(servers, "postgres", `CREATE DATABASE ${name}`);
    await sql(servers, name, schema);
    return name;
  }

  async function create(database: string, cluster = "pgtest"): Promise<string> {
    const result = await capsule(["pg", "--create", "--cluster", cluster], env(database));
    assert.equal(result.code, 0, result.stderr);
    return result.stdout.trim();
  }

  async function databases(): Promise<string[]> {
    return (await sql(servers, "postgres", "SELECT datname FROM pg_database ORDER BY 1")).map((r) =>
      String(r["datname"]),
    );
  }

  test("GIVEN a database with many types and objects WHEN backed up and restored THEN every table, sequence, large object and definition is identical, and the old database is kept", async () => {
    const db = await freshDatabase(RICH_SCHEMA);
    const before = await databaseDigest(servers, db);
    const id = await create(db);

    const described = await capsule(
      ["pg", "--describe", "--id", id, "--cluster", "pgtest", "-o", "json"],
      env(db),
    );
    const statefile = JSON.parse(described.stdout) as Statefile;
    assert.equal(statefile.status, "succeeded");
    assert.equal(statefile.artifact?.compression, "zstd");
    assert.deepEqual((statefile.fingerprint as { tables: Record<string, number> }).tables, {
      "Odd Schema.Mixed Case": 50,
      "public.audit": 0,
      "public.everything": 2002,
    });
    assert.match(statefile.tool["pg_dump"] ?? "", /^\d+\.\d+/);
    assert.doesNotMatch(JSON.stringify(statefile), new RegExp(servers.pg.password));

    // Change the live data so the restore has something to undo.
    await sql(servers, db, "DELETE FROM everything WHERE id % 2 = 0; SELECT nextval('invoice_no');");
    assert.notDeepEqual(await databaseDigest(servers, db), before);

    const restored = await capsule(["pg", "--restore", "--yes", "--id", id, "--cluster", "pgtest"], env(db));
    assert.equal(restored.code, 0, restored.stderr);
    assert.deepEqual(await databaseDigest(servers, db), before);
    const kept = (await databases()).filter((d) => d.startsWith(`${db}_pre_restore_`));
    assert.equal(kept.length, 1);
    assert.match(restored.stderr, new RegExp(`DROP DATABASE "${kept[0]}"`));
    const oldRows = await sql(servers, kept[0]!, "SELECT count(*)::int AS n FROM everything");
    assert.equal(
      oldRows[0]!["n"],
      1001,
      "the pre-restore database holds the data as it was before the restore",
    );
    assert.ok(!(await databases()).some((d) => d.includes("_capsule_restore_")), "no scratch database left");

    const after = await capsule(
      ["pg", "--describe", "--id", id, "--cluster", "pgtest", "-o", "json"],
      env(db),
    );
    const restores = (JSON.parse(after.stdout) as Statefile).restores;
    assert.equal(restores.length, 1);
    assert.equal(restores[0]?.result, "succeeded");
  });

  test("GIVEN a backup WHEN downloaded THEN plain pg_restore restores it into an empty database", async () => {
    const db = await freshDatabase(RICH_SCHEMA);
    const id = await create(db);
    const dir = await mkdtemp(path.join(tmpdir(), "capsule-pg-dl-"));
    const file = path.join(dir, "app.dump");
    const dl = await capsule(["pg", "--download", "--id", id, "--cluster", "pgtest", "--to", file], env(db));
    assert.equal(dl.code, 0, dl.stderr);
    const target = `${db}_plain`;
    await sql(servers, "postgres", `CREATE DATABASE ${target}`);
    await exec("pg_restore", ["--exit-on-error", "-d", target, file], {
      env: { ...process.env, ...pgEnv(servers, target) },
    });
    assert.deepEqual(await databaseDigest(servers, target), await databaseDigest(servers, db));
  });

  test("GIVEN --to-database WHEN restoring THEN the data lands beside the original, which is untouched", async () => {
    const db = await freshDatabase("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100);");
    const id = await create(db);
    await sql(servers, db, "INSERT INTO t VALUES (101)");
    const copy = `${db}_copy`;
    const r = await capsule(
      ["pg", "--restore", "--yes", "--id", id, "--cluster", "pgtest", "--to-database", copy],
      env(db),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await sql(servers, copy, "SELECT count(*)::int AS n FROM t"))[0]!["n"], 100);
    assert.equal((await sql(servers, db, "SELECT count(*)::int AS n FROM t"))[0]!["n"], 101);
  });

  test("GIVEN --in-place WHEN restoring THEN the database is overwritten with the backup's data", async () => {
    const db = await freshDatabase(
      "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 100);",
    );
    const before = await databaseDigest(servers, db);
    const id = await create(db);
    await sql(servers, db, "DELETE FROM t WHERE id > 50; CREATE TABLE extra (x int);");
    const r = await capsule(
      ["pg", "--restore", "--yes", "--in-place", "--id", id, "--cluster", "pgtest"],
      env(db),
    );
    assert.equal(r.code, 0, r.stderr);
    const after = await databaseDigest(servers, db);
    assert.equal(after["table public.t"], before["table public.t"]);
  });

  test("GIVEN a flipped byte in the stored artifact WHEN restoring THEN it refuses, the database is unchanged and no scratch database is left", async () => {
    const db = await freshDatabase(
      "CREATE TABLE t (id int, s text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g;",
    );
    const id = await create(db);
    const store = openBackupStore({ bucket }, env(db));
    const ref = { cluster: "pgtest", engine: "postgresql" as const, backupId: id };
    const entry = await store.get(ref);
    const key = layout.artifactKey(prefixOf(store), ref, entry.statefile!.artifact!.name);
    const bytes = Buffer.concat(await (await objectsOf(store).get(key)).toArray());
    const middle = Math.floor(bytes.length / 2);
    bytes[middle] = bytes[middle]! ^ 0x01;
    await objectsOf(store).put(key, bytes);

    await sql(servers, db, "INSERT INTO t VALUES (-1, 'live change')");
    const before = await databaseDigest(servers, db);
    for (const mode of [[], ["--in-place"], ["--to-database", `${db}_x`]]) {
      const r = await capsule(
        ["pg", "--restore", "--yes", "--id", id, "--cluster", "pgtest", ...mode],
        env(db),
      );
      assert.equal(r.code, 1, `restore ${mode.join(" ")} must fail`);
      assert.match(r.stderr, /checksum mismatch/);
      assert.deepEqual(await databaseDigest(servers, db), before);
    }
    const left = (await databases()).filter((d) => d.startsWith(db) && d !== db);
    assert.deepEqual(left, []);
    const dl = await capsule(
      ["pg", "--download", "--id", id, "--cluster", "pgtest", "--to", path.join(tmpdir(), uniqueName("x"))],
      env(db),
    );
    assert.equal(dl.code, 1);
    assert.match(dl.stderr, /checksum mismatch/);
  });

  test("GIVEN a backup killed mid-stream WHEN listed THEN it is never succeeded, and restore refuses without --force", async () => {
    // ~120 MB of incompressible text so the dump is still streaming when it is killed.
    const db = await freshDatabase(
      "CREATE TABLE big (id int, s text); INSERT INTO big SELECT g, (SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 30)) || g FROM generate_series(1, 120000) g;",
    );
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "src/cli.ts", "pg", "--create", "--cluster", "killed"],
      {
        env: { ...process.env, ...env(db), PGDATABASE: db },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const exited = new Promise((r) => child.on("exit", r));
    const store = openBackupStore({ bucket }, env(db));
    let id: string | undefined;
    for (let i = 0; i < 200 && !id; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const running = (await store.list({ cluster: "killed", engine: "postgresql" })).find(
        (e) => e.statefile?.phase === "dumping",
      );
      id = running?.ref.backupId;
    }
    assert.ok(id, "the run reached the dumping phase");
    child.kill("SIGKILL");
    await exited;

    const list = await capsule(["pg", "--list", "--cluster", "killed", "-o", "json"], env(db));
    const entries = JSON.parse(list.stdout) as Array<{ backupId: string; state: string }>;
    assert.deepEqual(
      entries.map((e) => e.state),
      ["running"],
    );
    const restore = await capsule(
      ["pg", "--restore", "--yes", "--id", id, "--cluster", "killed", "--to-database", `${db}_r`],
      env(db),
    );
    assert.equal(restore.code, 1);
    assert.match(restore.stderr, /is running: only succeeded backups are restored \(--force to try anyway\)/);
    assert.ok(!(await databases()).includes(`${db}_r`));
  });

  test("GIVEN a backup interrupted by SIGTERM WHEN it stops THEN its statefile says failed, with the phase", async () => {
    const db = await freshDatabase(
      "CREATE TABLE big (id int, s text); INSERT INTO big SELECT g, (SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 30)) || g FROM generate_series(1, 120000) g;",
    );
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "src/cli.ts", "pg", "--create", "--cluster", "termed"],
      {
        env: { ...process.env, ...env(db), PGDATABASE: db },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    const store = openBackupStore({ bucket }, env(db));
    for (let i = 0; i < 200; i++) {
      await new Promise((r) => setTimeout(r, 50));
      if (
        (await store.list({ cluster: "termed", engine: "postgresql" })).some(
          (e) => e.statefile?.phase === "dumping",
        )
      )
        break;
    }
    child.kill("SIGTERM");
    assert.notEqual(await exited, 0);
    const [entry] = await store.list({ cluster: "termed", engine: "postgresql" });
    assert.equal(entry?.state, "failed", stderr);
    assert.match(entry?.statefile?.error?.message ?? "", /interrupted by SIGTERM while dumping/);
    assert.ok(!(await databases()).some((d) => d.startsWith(`${db}_`)));
  });

  describe("one clear line for each mistake", () => {
    const cases: Array<{ name: string; args: string[]; env: () => Record<string, string>; message: RegExp }> =
      [
        {
          name: "a wrong password",
          args: ["pg", "--create"],
          env: () => ({ ...env("postgres"), PGPASSWORD: "wrong-password-123" }),
          message: /authentication failed for user "postgres"/,
        },
        {
          name: "an unreachable host",
          args: ["pg", "--create", "--host", "127.0.0.1", "--port", "9"],
          env: () => env("postgres"),
          message: /postgresql:\/\/postgres@127\.0\.0\.1:9\/postgres: cannot connect \(ECONNREFUSED\)/,
        },
        {
          name: "a missing database",
          args: ["pg", "--create", "--database", "no_such_db"],
          env: () => env("postgres"),
          message: /database "no_such_db" does not exist/,
        },
        {
          name: "an invalid bucket URL",
          args: ["pg", "--create", "--bucket", "s3:/nope"],
          env: () => env("postgres"),
          message: /--bucket "s3:\/nope"/,
        },
        {
          name: "an unknown --id",
          args: ["pg", "--restore", "--yes", "--id", "postgresql-20200101T000000Z-000000"],
          env: () => env("postgres"),
          message: /no backup postgresql-20200101T000000Z-000000 for cluster local/,
        },
      ];
    for (const c of cases) {
      test(`GIVEN ${c.name} THEN capsule exits non-zero with one line that says so, and no secret`, async () => {
        const result = await capsule(c.args, c.env());
        assert.equal(result.code, 1);
        assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
        assert.match(result.stderr, c.message);
        assert.doesNotMatch(result.stderr + result.stdout, /wrong-password-123|capsule-test-pg-pass/);
      });
    }

    test("GIVEN a failed backup (wrong password) WHEN listed THEN it shows as failed with a redacted message", async () => {
      const result = await capsule(["pg", "--list", "--cluster", "local", "-o", "json"], env("postgres"));
      const failed = (JSON.parse(result.stdout) as Statefile[]).filter((s) => s.status === "failed");
      assert.ok(failed.length >= 1);
      assert.doesNotMatch(JSON.stringify(failed), /wrong-password-123|capsule-test-pg-pass/);
    });
  });

  test("GIVEN a backup WHEN deleted THEN artifact and statefile are gone from the bucket", async () => {
    const db = await freshDatabase("CREATE TABLE t (id int);");
    const id = await create(db, "deleting");
    const r = await capsule(["pg", "--delete", "--yes", "--id", id, "--cluster", "deleting"], env(db));
    assert.equal(r.code, 0, r.stderr);
    const store = openBackupStore({ bucket }, env(db));
    const keys = [];
    for await (const o of objectsOf(store).list(layout.clusterPrefix(prefixOf(store), "deleting")))
      keys.push(o.key);
    assert.deepEqual(keys, []);
  });
});
