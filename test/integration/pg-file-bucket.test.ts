/**
 * PostgreSQL into a file:// bucket, where zstd writes the artifact's file itself and capsule hashes it as it is read
 * back (docs/adr/0020): the restore is exact, the recorded digest is the stored file's, and a capsule killed outright
 * mid-dump takes pg_dump and zstd with it. Real server, real processes, real directory.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdtemp, readdir, readlink, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import type { Statefile } from "../../src/domain/statefile.js";
import { testServers, uniqueName, type TestServers } from "../harness/index.js";
import { eventually } from "../fakes/kube-clients.js";
import { capsule } from "../support/cli.js";
import { startCapsule } from "../support/capsule-process.js";
import { filesUnder } from "../support/files.js";
import { databaseDigest, pgDumpSessions, pgEnv, RICH_SCHEMA, sql } from "../support/pg.js";

/**
 * ~60 MB of random hex, a different row each time (the subquery names g, so it runs per row): zstd halves it and no
 * more, so the artifact's file grows through the whole dump and the test can act while it does.
 */
const BIG_TABLE =
  "CREATE TABLE big (id int, s text); INSERT INTO big SELECT g, (SELECT string_agg(md5(random()::text || g || '.' || i), '') " +
  "FROM generate_series(1, 30) AS i) FROM generate_series(1, 60000) g;";

async function sha256Of(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** The artifact's temp file once zstd has written into it (not a statefile's: written the same way, only small). */
async function artifactBegun(dir: string): Promise<string> {
  let temp: string | undefined;
  await eventually(
    async () => {
      for (const file of await filesUnder(dir)) {
        const size = await stat(file).then(
          (s) => s.size,
          () => 0,
        );
        if (file.includes(".zst.capsule-tmp-") && size > 0) temp = file;
      }
      return temp !== undefined;
    },
    60_000,
    "zstd to begin writing the artifact",
  );
  return temp!;
}

/** The processes that hold `file` open, by their /proc entries. */
async function holdersOf(file: string): Promise<string[]> {
  const holders: string[] = [];
  for (const pid of (await readdir("/proc")).filter((p) => /^\d+$/.test(p))) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => []);
    for (const fd of fds) {
      if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "")) === file) holders.push(pid);
    }
  }
  return holders;
}

describe("capsule pg into a file:// bucket", () => {
  let servers: TestServers;
  // Each test makes tens of MB of table and of dumps: they go when the suite ends, not with the machine.
  const databases: string[] = [];
  const buckets: string[] = [];

  before(async () => {
    servers = await testServers();
  });

  after(async () => {
    for (const db of databases) {
      for (const name of [db, `${db}_copy`])
        await sql(servers, "postgres", `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
    for (const dir of buckets) await rm(dir, { recursive: true, force: true });
  });

  async function freshDatabase(schema: string): Promise<string> {
    const name = uniqueName("db").replace(/-/g, "_");
    databases.push(name);
    await sql(servers, "postgres", `CREATE DATABASE ${name}`);
    await sql(servers, name, schema);
    return name;
  }

  async function freshBucket(): Promise<{ dir: string; url: string }> {
    const dir = await mkdtemp(path.join(tmpdir(), "capsule-pg-file-"));
    buckets.push(dir);
    return { dir, url: `file://${dir}` };
  }

  test("GIVEN a backup into a file:// bucket WHEN restored to a new database THEN it is identical, and the recorded digest and size are the stored file's", async () => {
    const db = await freshDatabase(RICH_SCHEMA);
    const bucket = await freshBucket();
    const env = { ...pgEnv(servers, db), CAPSULE_BUCKET: bucket.url };
    const created = await capsule(["pg", "--create", "--cluster", "filed", "-o", "json"], env);
    assert.equal(created.code, 0, created.stderr);
    const statefile = JSON.parse(created.stdout) as Statefile;
    const artifact = (await filesUnder(bucket.dir)).find((f) => f.endsWith(statefile.artifact!.name));
    assert.ok(artifact, "the artifact is stored under its name");
    assert.equal(statefile.artifact!.sizeBytes, await stat(artifact).then((s) => s.size));
    assert.equal(statefile.artifact!.sha256, await sha256Of(artifact));
    assert.deepEqual(
      (await filesUnder(bucket.dir)).filter((f) => f.includes(".capsule-tmp-")),
      [],
      "no temp file is left",
    );

    const target = `${db}_copy`;
    const restored = await capsule(
      ["pg", "--restore", "--yes", "--id", statefile.backupId, "--cluster", "filed", "--to-database", target],
      env,
    );
    assert.equal(restored.code, 0, restored.stderr);
    assert.deepEqual(await databaseDigest(servers, target), await databaseDigest(servers, db));
  });

  test("GIVEN a backup into a file:// bucket WHEN capsule is killed by SIGKILL mid-dump THEN pg_dump and zstd stop with it, and the half-written file never grows to a whole one", async () => {
    const db = await freshDatabase(BIG_TABLE);
    const bucket = await freshBucket();
    const env = { ...pgEnv(servers, db), CAPSULE_BUCKET: bucket.url };
    const run = startCapsule(["pg", "--create", "--cluster", "killed"], env);
    const temp = await artifactBegun(bucket.dir);
    run.signal("SIGKILL");
    await run.exited;

    // Nothing capsule started writes on: no process holds the file, and the server has no pg_dump session left.
    await eventually(async () => (await holdersOf(temp)).length === 0, 30_000, "the writers to exit");
    await eventually(
      async () => (await pgDumpSessions(servers, db)) === 0,
      30_000,
      "pg_dump to leave the server",
    );
    const partial = (await stat(temp)).size;

    // A whole backup of the same data: how big the killed one's file would have grown had zstd written on.
    const whole = await capsule(["pg", "--create", "--cluster", "whole", "-o", "json"], env);
    assert.equal(whole.code, 0, whole.stderr);
    const wholeBytes = (JSON.parse(whole.stdout) as Statefile).artifact!.sizeBytes;
    assert.ok(
      partial < wholeBytes / 2,
      `the killed run's file stopped at ${partial} bytes; a whole dump is ${wholeBytes}`,
    );

    const listed = await capsule(["pg", "--list", "--cluster", "killed", "-o", "json"], env);
    assert.deepEqual(
      (JSON.parse(listed.stdout) as Array<{ state: string }>).map((e) => e.state),
      ["running"],
    );
  });
  test("GIVEN a backup into a file:// bucket WHEN capsule is interrupted by SIGTERM mid-dump THEN it exits 143, its statefile says failed while dumping, and no temp file is left", async () => {
    const db = await freshDatabase(BIG_TABLE);
    const bucket = await freshBucket();
    const env = { ...pgEnv(servers, db), CAPSULE_BUCKET: bucket.url };
    const run = startCapsule(["pg", "--create", "--cluster", "termed"], env);
    await artifactBegun(bucket.dir);
    run.signal("SIGTERM");
    assert.equal((await run.exited).code, 143, run.stderr());
    const listed = await capsule(["pg", "--list", "--cluster", "termed", "-o", "json"], env);
    assert.deepEqual(
      (JSON.parse(listed.stdout) as Array<Statefile & { state: string }>).map((e) => [e.state, e.phase]),
      [["failed", "dumping"]],
    );
    assert.deepEqual(
      (await filesUnder(bucket.dir)).filter((f) => f.includes(".capsule-tmp-")),
      [],
      "the half-written artifact is removed",
    );
  });
});
