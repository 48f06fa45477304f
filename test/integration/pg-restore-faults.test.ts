/**
 * PostgreSQL restores under fault (#16 items 1, 2, 3, 5): a real capsule process is sent SIGINT, SIGTERM or SIGKILL
 * while pg_restore is genuinely mid-way (rows are being copied, seen in pg_stat_progress_copy) or at a failpoint
 * inside the swap transaction, and the real server and bucket are inspected afterwards: the target holds exactly its
 * old data (or exactly the backup's), nothing capsule made is left unnamed, and restores[] says what happened.
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { before, describe, test } from "node:test";
import { openBackupStore } from "../../src/runtime/bucket.js";
import { layout } from "../../src/storage/layout.js";
import type { RestoreRecord } from "../../src/domain/statefile.js";
import { createBucket, s3Env, testServers, uniqueName, type TestServers } from "../harness/index.js";
import { startCapsule, type CapsuleProcess } from "../support/capsule-process.js";
import { capsule } from "../support/cli.js";
import { databaseDigest, pgEnv, RICH_SCHEMA, sql } from "../support/pg.js";
import { objectsOf, prefixOf } from "../support/raw-bucket.js";

const exec = promisify(execFile);

/** Enough rows that pg_restore is still copying when the fault arrives, and an index it must rebuild. */
const BIG_SCHEMA = `
  CREATE TABLE big (id bigint PRIMARY KEY, s text);
  INSERT INTO big SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, 400000) g;
  CREATE INDEX big_s ON big (s);
  CREATE TABLE small (k text PRIMARY KEY);
  INSERT INTO small VALUES ('a'), ('b');
`;

/** Bounded wait for a condition on a real server or file system (no fixed sleeps in assertions). */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe("capsule pg restore under fault", () => {
  let servers: TestServers;
  let bucket: string;
  let golden: string;
  let backupId: string;
  const cluster = "pgfaults";

  const env = (database?: string): Record<string, string> => {
    const pg = pgEnv(servers, database ?? "postgres");
    if (database === undefined) delete (pg as Partial<typeof pg>).PGDATABASE;
    return { ...s3Env(servers.s3), ...pg, CAPSULE_BUCKET: bucket };
  };

  before(async () => {
    servers = await testServers();
    bucket = `s3://${uniqueName("pgfaults")}/capsule`;
    await createBucket(servers.s3, new URL(bucket).host);
    golden = uniqueName("golden").replace(/-/g, "_");
    await sql(servers, "postgres", `CREATE DATABASE ${golden}`);
    await sql(servers, golden, BIG_SCHEMA);
    const r = await capsule(["pg", "--create", "--cluster", cluster], env(golden));
    assert.equal(r.code, 0, r.stderr);
    backupId = r.stdout.trim();
  });

  /** A production database that differs from the backup, so "unchanged" and "restored" can be told apart. */
  async function production(): Promise<{ db: string; digest: Record<string, string> }> {
    const db = uniqueName("prod").replace(/-/g, "_");
    await sql(servers, "postgres", `CREATE DATABASE ${db} TEMPLATE ${golden}`);
    await sql(servers, db, "DELETE FROM big WHERE id % 10 = 0; INSERT INTO small VALUES ('old data');");
    return { db, digest: await databaseDigest(servers, db) };
  }

  async function databases(): Promise<string[]> {
    return (await sql(servers, "postgres", "SELECT datname FROM pg_database ORDER BY 1")).map((r) =>
      String(r["datname"]),
    );
  }

  /** pg_restore is copying rows into `database` (any database whose name starts with it). */
  async function copying(database: string): Promise<boolean> {
    const rows = await sql(
      servers,
      "postgres",
      `SELECT coalesce(sum(tuples_processed), 0)::bigint AS n FROM pg_stat_progress_copy
       WHERE datname LIKE '${database}%'`,
    );
    return Number(rows[0]!["n"]) > 0;
  }

  /** No session of a (possibly orphaned) pg_restore is left on databases named like `database`. */
  async function restoreSessionsGone(database: string): Promise<boolean> {
    const rows = await sql(
      servers,
      "postgres",
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname LIKE '${database}%'
       AND (application_name LIKE 'capsule-restore:%' OR application_name = 'pg_restore')`,
    );
    return rows[0]!["n"] === 0;
  }

  async function lastRestore(): Promise<RestoreRecord | undefined> {
    const store = openBackupStore({ bucket }, env(golden));
    const entry = await store.get({ cluster, engine: "postgresql", backupId });
    return entry.statefile?.restores.at(-1);
  }

  function restore(db: string, mode: string[], failpoints: string[] = []): CapsuleProcess {
    return startCapsule(
      ["pg", "--restore", "--yes", "--id", backupId, "--cluster", cluster, "--database", db, ...mode],
      env(db),
      { failpoints },
    );
  }

  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    const code = signal === "SIGINT" ? 130 : 143;
    test(`GIVEN --in-place WHEN ${signal} arrives while pg_restore is copying rows THEN capsule exits ${code} saying the database is unchanged, it holds exactly its old data, and restores[] records the interruption`, async () => {
      const { db, digest } = await production();
      const p = restore(db, ["--in-place"]);
      await p.waitForStderr(/restoring in place/);
      await until("pg_restore copying rows", () => copying(db));
      p.signal(signal);
      const exit = await p.exited;
      assert.equal(exit.code, code, p.stderr());
      const last = p.stderr().trim().split("\n").at(-1)!;
      assert.match(
        last,
        new RegExp(`^capsule: CAPSULE_INTERRUPTED: interrupted by ${signal} .*${db} is unchanged`),
      );
      await until("the restore's session to end", () => restoreSessionsGone(db));
      assert.deepEqual(await databaseDigest(servers, db), digest);
      const record = await lastRestore();
      assert.equal(record?.result, "interrupted");
      assert.match(record?.message ?? "", /unchanged/);
    });
  }

  test("GIVEN --in-place WHEN capsule is killed (SIGKILL) while pg_restore is copying rows THEN the database holds exactly its old data, indexes included", async () => {
    const { db, digest } = await production();
    const p = restore(db, ["--in-place"]);
    await p.waitForStderr(/restoring in place/);
    await until("pg_restore copying rows", () => copying(db));
    p.signal("SIGKILL");
    await p.exited;
    // The orphaned pg_restore sees its input end short and exits; the server rolls its transaction back.
    await until("the orphaned pg_restore's session to end", () => restoreSessionsGone(db));
    assert.deepEqual(await databaseDigest(servers, db), digest);
  });

  test("GIVEN a forged statefile whose artifact passes sha256 but zstd cannot decode to the end WHEN restored --in-place THEN it fails, saying the database is unchanged, and the data is exactly the old data", async () => {
    const { db, digest } = await production();
    // A second backup whose artifact is cut at 60% and whose statefile is rewritten to match it.
    const second = await capsule(["pg", "--create", "--cluster", cluster, "--target", "forged"], env(db));
    assert.equal(second.code, 0, second.stderr);
    const id = second.stdout.trim();
    const store = openBackupStore({ bucket }, env(db));
    const ref = { cluster, engine: "postgresql" as const, backupId: id };
    const entry = await store.get(ref);
    const key = layout.artifactKey(prefixOf(store), ref, entry.statefile!.artifact!.name);
    const bytes = Buffer.concat(await (await objectsOf(store).get(key)).toArray());
    const cut = bytes.subarray(0, Math.floor(bytes.length * 0.6));
    await objectsOf(store).put(key, cut);
    const { createHash } = await import("node:crypto");
    await store.update(ref, (s) => {
      s.artifact!.sha256 = createHash("sha256").update(cut).digest("hex");
      s.artifact!.sizeBytes = cut.length;
    });
    await sql(servers, db, "INSERT INTO small VALUES ('after the forged backup')");
    const before = await databaseDigest(servers, db);
    assert.notDeepEqual(before, digest);

    const r = await capsule(
      ["pg", "--restore", "--yes", "--in-place", "--id", id, "--cluster", cluster, "--database", db],
      env(db),
    );
    assert.equal(r.code, 1, r.stderr);
    await until("the restore's session to end", () => restoreSessionsGone(db));
    assert.deepEqual(await databaseDigest(servers, db), before);
    assert.match(
      r.stderr.trim().split("\n").at(-1)!,
      new RegExp(`^capsule: CAPSULE_TOOL_FAILED: zstd .*; ${db} is unchanged`),
    );
    assert.equal(
      r.stderr
        .trim()
        .split("\n")
        .filter((l) => l.startsWith("capsule:")).length,
      1,
    );
  });

  test("GIVEN extensions, an enum, a large object, triggers and views WHEN restored --in-place in one transaction THEN every object and row is the backup's", async () => {
    // --single-transaction refuses statements that cannot run in a transaction block; a dump must not contain any.
    const db = uniqueName("rich").replace(/-/g, "_");
    await sql(servers, "postgres", `CREATE DATABASE ${db}`);
    await sql(servers, db, RICH_SCHEMA);
    const digest = await databaseDigest(servers, db);
    const made = await capsule(["pg", "--create", "--cluster", cluster, "--target", "rich"], env(db));
    assert.equal(made.code, 0, made.stderr);
    await sql(
      servers,
      db,
      "DELETE FROM everything WHERE id % 3 = 0; SELECT lo_unlink(min(oid)) FROM pg_largeobject_metadata;",
    );
    const r = await capsule(
      [
        "pg",
        "--restore",
        "--yes",
        "--in-place",
        "--id",
        made.stdout.trim(),
        "--cluster",
        cluster,
        "--database",
        db,
      ],
      env(db),
    );
    assert.equal(r.code, 0, r.stderr);
    const after = await databaseDigest(servers, db);
    assert.deepEqual(after, digest);
  });

  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    const code = signal === "SIGINT" ? 130 : 143;
    test(`GIVEN a swap restore WHEN ${signal} arrives while pg_restore is copying into the scratch database THEN capsule exits ${code}, the scratch database is dropped, the database is unchanged and restores[] records the interruption`, async () => {
      const { db, digest } = await production();
      const p = restore(db, []);
      await p.waitForStderr(/restoring into .*_capsule_restore_/);
      await until("pg_restore copying rows", () => copying(`${db}_capsule_restore_`));
      p.signal(signal);
      const exit = await p.exited;
      assert.equal(exit.code, code, p.stderr());
      assert.match(
        p.stderr().trim().split("\n").at(-1)!,
        new RegExp(
          `^capsule: CAPSULE_INTERRUPTED: interrupted by ${signal} while restoring into ${db}_capsule_restore_\\d+: ${db} is unchanged; the scratch database was dropped$`,
        ),
      );
      assert.deepEqual(
        (await databases()).filter((d) => d.startsWith(db)),
        [db],
      );
      assert.deepEqual(await databaseDigest(servers, db), digest);
      assert.equal((await lastRestore())?.result, "interrupted");
    });
  }

  test("GIVEN a swap restore WHEN capsule is killed (SIGKILL) while pg_restore is copying into the scratch database THEN the database is unchanged, and --check --yes drops the scratch database even while the orphaned pg_restore still holds it", async () => {
    const { db, digest } = await production();
    const p = restore(db, []);
    await p.waitForStderr(/restoring into .*_capsule_restore_/);
    await until("pg_restore copying rows", () => copying(`${db}_capsule_restore_`));
    p.signal("SIGKILL");
    await p.exited;
    assert.deepEqual(await databaseDigest(servers, db), digest);
    const scratch = (await databases()).filter((d) => d.startsWith(`${db}_capsule_restore_`));
    assert.equal(scratch.length, 1);
    const fix = await capsule(["pg", "--check", "--yes", "--cluster", cluster, "--database", db], env(db));
    assert.match(fix.stderr, new RegExp(`dropped scratch database ${scratch[0]!}`));
    assert.deepEqual(
      (await databases()).filter((d) => d.startsWith(db)),
      [db],
    );
    assert.deepEqual(await databaseDigest(servers, db), digest);
  });

  test("GIVEN a swap restore WHEN capsule is killed (SIGKILL) between the two renames THEN the database still exists with its old data, and the leftover scratch database is named by the next restore and by --check, and dropped by --check --yes", async () => {
    const { db, digest } = await production();
    const p = restore(db, [], ["pg-swap-between-renames"]);
    await p.waitForStderr(/failpoint pg-swap-between-renames reached/);
    p.signal("SIGKILL");
    await p.exited;
    // The server rolls the renaming transaction back when capsule's session goes.
    await until("the swap's session to end", async () => {
      const rows = await sql(
        servers,
        "postgres",
        `SELECT count(*)::int AS n FROM pg_database WHERE datname LIKE '${db}_pre_restore_%'`,
      );
      return rows[0]!["n"] === 0;
    });
    const names = await databases();
    assert.ok(names.includes(db), "a database still carries the target's name");
    assert.deepEqual(await databaseDigest(servers, db), digest);
    const scratch = names.filter((d) => d.startsWith(`${db}_capsule_restore_`));
    assert.equal(scratch.length, 1, "the killed run's scratch database is there to be found");

    const check = await capsule(["pg", "--check", "--cluster", cluster, "--database", db], env(db));
    assert.equal(check.code, 1, check.stderr);
    assert.match(check.stdout + check.stderr, new RegExp(scratch[0]!));
    assert.ok((await databases()).includes(scratch[0]!), "--check without --yes removes nothing");

    const again = await capsule(
      [
        "pg",
        "--restore",
        "--yes",
        "--id",
        backupId,
        "--cluster",
        cluster,
        "--database",
        db,
        "--to-database",
        `${db}_beside`,
      ],
      env(db),
    );
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, new RegExp(`found 1 scratch database.*${scratch[0]!}`));

    const fix = await capsule(["pg", "--check", "--yes", "--cluster", cluster, "--database", db], env(db));
    assert.match(fix.stdout + fix.stderr, new RegExp(`dropped.*${scratch[0]!}`));
    assert.ok(!(await databases()).includes(scratch[0]!));
  });

  test("GIVEN a swap restore WHEN SIGINT arrives between the two renames THEN the transaction is rolled back: the database is unchanged, nothing is renamed, the scratch database is dropped", async () => {
    const { db, digest } = await production();
    const p = restore(db, [], ["pg-swap-between-renames"]);
    await p.waitForStderr(/failpoint pg-swap-between-renames reached/);
    p.signal("SIGINT");
    const exit = await p.exited;
    assert.equal(exit.code, 130, p.stderr());
    assert.match(p.stderr(), new RegExp(`${db} is unchanged; the scratch database was dropped`));
    assert.deepEqual(
      (await databases()).filter((d) => d.startsWith(db)),
      [db],
    );
    assert.deepEqual(await databaseDigest(servers, db), digest);
  });

  test("GIVEN a scratch database a live restore is using WHEN another run checks the server with --check --yes THEN it is neither named nor dropped", async () => {
    const { db } = await production();
    const p = restore(db, [], ["pg-swap-between-renames"]);
    try {
      await p.waitForStderr(/failpoint pg-swap-between-renames reached/);
      const fix = await capsule(["pg", "--check", "--yes", "--cluster", cluster, "--database", db], env(db));
      assert.doesNotMatch(fix.stdout + fix.stderr, new RegExp(`${db}_capsule_restore_`));
      assert.equal((await databases()).filter((d) => d.startsWith(`${db}_capsule_restore_`)).length, 1);
    } finally {
      p.signal("SIGINT");
      await p.exited;
    }
  });

  test("GIVEN no --database WHEN restoring THEN the backup's own source database is the target; with PGDATABASE naming another database, capsule refuses with one line and touches nothing", async () => {
    // A backup of `source`, restored while the connection's database is another one.
    const { db: source } = await production();
    const made = await capsule(["pg", "--create", "--cluster", cluster, "--target", "item5"], env(source));
    assert.equal(made.code, 0, made.stderr);
    const id = made.stdout.trim();
    const { db: other, digest: otherDigest } = await production();
    await sql(servers, source, "INSERT INTO small VALUES ('changed after the backup')");

    const refused = await capsule(["pg", "--restore", "--yes", "--id", id, "--cluster", cluster], env(other));
    // The exit status of a usage error (today 1) is base-command's; the point here is non-zero and one line.
    assert.notEqual(refused.code, 0, refused.stderr);
    assert.equal(refused.stderr.trim().split("\n").length, 1);
    assert.match(refused.stderr, new RegExp(`backup of database "${source}" but PGDATABASE is "${other}"`));
    assert.match(refused.stderr, /--database/);
    assert.deepEqual(await databaseDigest(servers, other), otherDigest);
    assert.deepEqual(
      (await databases()).filter((d) => d.startsWith(other) || d.startsWith(`${source}_`)),
      [other],
    );

    const defaulted = await capsule(["pg", "--restore", "--yes", "--id", id, "--cluster", cluster], env());
    assert.equal(defaulted.code, 0, defaulted.stderr);
    const rows = await sql(
      servers,
      source,
      "SELECT count(*)::int AS n FROM small WHERE k = 'changed after the backup'",
    );
    assert.equal(rows[0]!["n"], 0, "the source database was restored");
    assert.equal((await databases()).filter((d) => d.startsWith(`${source}_pre_restore_`)).length, 1);
    assert.deepEqual(await databaseDigest(servers, other), otherDigest);
  });

  describe("the verify drill", () => {
    async function drill(): Promise<{ p: CapsuleProcess; tmp: string }> {
      const tmp = await mkdtemp(path.join(tmpdir(), "capsule-drill-faults-"));
      // Like /tmp: the throwaway cluster (the postgres user's, when the tests run as root) may remove its own dir.
      await chmod(tmp, 0o1777);
      const p = startCapsule(["pg", "--verify", "--id", backupId, "--cluster", cluster], {
        ...env(golden),
        TMPDIR: tmp,
      });
      await p.waitForStderr(/restoring into a throwaway PostgreSQL/);
      await until("pg_restore running under capsule", async () => {
        const children = await exec("pgrep", ["-P", String(p.child.pid), "pg_restore"]).catch(() => ({
          stdout: "",
        }));
        return children.stdout.trim() !== "";
      });
      return { p, tmp };
    }

    async function postgresUnder(tmp: string): Promise<string[]> {
      const { stdout } = await exec("ps", ["-eo", "pid=,args="]);
      return stdout.split("\n").filter((l) => l.includes(tmp) && /postgres/.test(l) && !/ps -eo/.test(l));
    }

    test("GIVEN throwaway-cluster directories WHEN --check runs THEN only the one whose capsule is dead is named, and --check --yes removes only it", async () => {
      const tmp = await mkdtemp(path.join(tmpdir(), "capsule-check-faults-"));
      const gone = spawn(process.execPath, ["-e", ""]);
      await new Promise((resolve) => gone.once("exit", resolve));
      const make = async (name: string, owner?: number) => {
        await mkdir(path.join(tmp, name, "data"), { recursive: true });
        if (owner !== undefined)
          await writeFile(path.join(tmp, name, "capsule.owner"), JSON.stringify({ pid: owner }));
      };
      await make("capsule-verify-pg-dead", gone.pid);
      await make("capsule-verify-pg-live", process.pid);
      await make("capsule-verify-pg-nomarker");
      const run = async (args: string[]) => {
        const p = startCapsule(["pg", "--check", "--cluster", cluster, ...args], {
          ...env(golden),
          TMPDIR: tmp,
        });
        return { exit: await p.exited, stderr: p.stderr() };
      };
      const check = await run([]);
      assert.equal(check.exit.code, 1, check.stderr);
      assert.match(check.stderr, /capsule-verify-pg-dead was left by an interrupted drill/);
      assert.doesNotMatch(check.stderr, /pg-live|pg-nomarker/);
      const fix = await run(["--yes"]);
      assert.equal(fix.exit.code, 0, fix.stderr);
      assert.deepEqual((await readdir(tmp)).filter((n) => n.startsWith("capsule-")).sort(), [
        "capsule-verify-pg-live",
        "capsule-verify-pg-nomarker",
      ]);
    });

    test("GIVEN a drill into a throwaway PostgreSQL WHEN SIGINT arrives mid-restore THEN capsule exits 130 saying so, and no postgres process or temp directory is left", async () => {
      const { p, tmp } = await drill();
      p.signal("SIGINT");
      const exit = await p.exited;
      assert.equal(exit.code, 130, p.stderr());
      assert.match(
        p.stderr().trim().split("\n").at(-1)!,
        /^capsule: CAPSULE_INTERRUPTED: interrupted by SIGINT during the restore drill: the throwaway PostgreSQL was stopped/,
      );
      assert.deepEqual(await postgresUnder(tmp), []);
      assert.deepEqual(
        (await readdir(tmp)).filter((n) => n.startsWith("capsule-")),
        [],
      );
    });

    test("GIVEN a drill into a throwaway PostgreSQL WHEN capsule is killed (SIGKILL) mid-restore THEN its postgres stops and its temp directory goes with it", async () => {
      const { p, tmp } = await drill();
      const [dir] = (await readdir(tmp)).filter((n) => n.startsWith("capsule-"));
      assert.match(dir ?? "", /^capsule-verify-pg-/);
      p.signal("SIGKILL");
      await p.exited;
      await until(
        "the throwaway cluster to stop and its directory to go",
        async () => !existsSync(path.join(tmp, dir!)) && (await postgresUnder(tmp)).length === 0,
        60_000,
      );
    });
  });
});
