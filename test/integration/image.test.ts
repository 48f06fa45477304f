/**
 * The capsule container image, run as a CronJob pod runs it — the image's user, a read-only root, /tmp the only
 * writable path — against the harness' real PostgreSQL, Redis and radosgw, and checked from the host through the
 * bucket. `scripts/image.sh build` (the image step of .ci/run) builds it. Without an image the tests skip with the
 * reason, except in CI (CI=true), where a missing image fails unless .ci/run said why it could not build one
 * (CAPSULE_IMAGE_SKIPPED).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { before, describe, test, type TestContext } from "node:test";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { DEFAULT_POD } from "../../src/plan/defaults.js";
import { openBackupStore } from "../../src/runtime/bucket.js";
import type { BackupStore } from "../../src/storage/backup-store.js";
import type { EngineName } from "../../src/domain/backup.js";
import type { Statefile } from "../../src/domain/statefile.js";
import {
  createBucket,
  s3Client,
  s3Env,
  testServers,
  uniqueName,
  type TestServers,
} from "../harness/index.js";
import { pgEnv, sql } from "../support/pg.js";

const root = path.resolve(import.meta.dirname, "..", "..");
const script = path.join(root, "scripts", "image.sh");
const CLUSTER = "image";

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

function bash(args: string[], env: Record<string, string> = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [script, ...args], { cwd: root, env: { ...process.env, ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** A command inside the image; `env` reaches it by name (`--env NAME`), its values never on a command line. */
function inImage(command: string[], env: Record<string, string> = {}): Promise<Ran> {
  return bash(["run", ...Object.keys(env).flatMap((name) => ["--env", name]), "--", ...command], env);
}

interface ImageInfo {
  id: string;
  user: string;
  entrypoint: string[];
  labels: Record<string, string>;
  sizeBytes: number;
}

/** The built image, or why there is none. */
async function findImage(): Promise<{ info: ImageInfo } | { missing: string }> {
  const skipped = process.env["CAPSULE_IMAGE_SKIPPED"];
  if (skipped) return { missing: `the image step did not run: ${skipped}` };
  const check = await bash(["check"]);
  if (check.code !== 0)
    return { missing: `buildah cannot run here: ${check.stdout.trim() || check.stderr.trim()}` };
  const inspect = await bash(["inspect"]);
  if (inspect.code !== 0) {
    return { missing: `${inspect.stderr.trim() || "no image"} (build it with scripts/image.sh build)` };
  }
  return { info: JSON.parse(inspect.stdout) as ImageInfo };
}

describe("the capsule image", () => {
  let image: { info: ImageInfo } | { missing: string };
  let servers: TestServers;
  let env: Record<string, string>;
  let store: BackupStore;
  let bucket: string;
  let db: string;
  let pkgVersion: string;
  /** The lowest Node major package.json's engines.node (">=N") allows. */
  let nodeMajor: number;

  before(async () => {
    image = await findImage();
    const pkg = JSON.parse(await readFile(path.join(root, "package.json"), "utf8")) as {
      version: string;
      engines: { node: string };
    };
    pkgVersion = pkg.version;
    nodeMajor = Number(/^>=(\d+)/.exec(pkg.engines.node)?.[1]);
    if (!("info" in image)) return;
    servers = await testServers();
    bucket = uniqueName("image");
    await createBucket(servers.s3, bucket);
    db = uniqueName("imgdb").replace(/-/g, "_");
    await sql(servers, "postgres", `CREATE DATABASE ${db}`);
    await sql(
      servers,
      db,
      "CREATE TABLE t (id int PRIMARY KEY, s text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 3000) g;",
    );
    env = {
      ...s3Env(servers.s3),
      ...pgEnv(servers, db),
      CAPSULE_BUCKET: `s3://${bucket}/capsule`,
      CAPSULE_CLUSTER: CLUSTER,
    };
    store = openBackupStore({}, env);
  });

  /** The image, or: a visible skip outside CI, a failure in CI. */
  function requireImage(t: TestContext): ImageInfo | undefined {
    if ("info" in image) return image.info;
    if (process.env["CI"] === "true" && !process.env["CAPSULE_IMAGE_SKIPPED"]) {
      assert.fail(`CI must build the capsule image before npm test: ${image.missing}`);
    }
    t.skip(image.missing);
    return undefined;
  }

  async function statefileOf(engine: EngineName, id: string): Promise<Statefile> {
    const entry = await store.get({ cluster: CLUSTER, engine, backupId: id });
    assert.ok(entry.statefile, `statefile of ${engine} backup ${id}: ${entry.state}`);
    return entry.statefile;
  }

  test("GIVEN the built image WHEN inspected THEN capsule is the entrypoint, the user is the pods' uid and the OCI labels name the version", (t) => {
    const info = requireImage(t);
    if (!info) return;
    t.diagnostic(`image ${info.id.slice(0, 12)}: ${(info.sizeBytes / 1e6).toFixed(0)} MB unpacked`);
    assert.deepEqual(info.entrypoint, ["capsule"]);
    assert.equal(info.user, `${DEFAULT_POD.runAsUser}:${DEFAULT_POD.runAsGroup}`);
    assert.equal(info.labels["org.opencontainers.image.version"], pkgVersion);
    assert.equal(info.labels["org.opencontainers.image.title"], "capsule");
    assert.match(info.labels["org.opencontainers.image.revision"] ?? "", /^[0-9a-f]{40}$|^unknown$/);
  });

  test("GIVEN the image WHEN capsule version, pg_dump --version and id run inside THEN capsule (stamped with the revision, on the Node engines.node wants), a pg_dump as new as the server and a non-root user answer", async (t) => {
    const info = requireImage(t);
    if (!info) return;
    const version = await inImage(["capsule", "version", "-o", "json"]);
    assert.equal(version.code, 0, version.stderr);
    const stamp = JSON.parse(version.stdout) as {
      version: string;
      commit: string;
      date: string;
      node: string;
    };
    assert.equal(stamp.version, pkgVersion);
    assert.ok(
      Number(/^v(\d+)\./.exec(stamp.node)?.[1]) >= nodeMajor,
      `the image's node ${stamp.node} is older than engines.node wants (>=${nodeMajor})`,
    );
    assert.equal(
      stamp.commit,
      info.labels["org.opencontainers.image.revision"],
      "the build stamped the revision",
    );
    assert.match(stamp.date, /^\d{4}-\d{2}-\d{2}T/);

    const dump = await inImage(["pg_dump", "--version"]);
    assert.equal(dump.code, 0, dump.stderr);
    const major = Number(/\(PostgreSQL\) (\d+)/.exec(dump.stdout)?.[1]);
    assert.equal(major, 17, dump.stdout);
    assert.ok(
      major >= Number(servers.pg.version.split(".")[0]),
      `pg_dump ${major} vs server ${servers.pg.version}`,
    );

    const id = await inImage(["id", "-u"]);
    assert.equal(id.stdout.trim(), String(DEFAULT_POD.runAsUser));
    const write = await inImage(["touch", "/opt/capsule/probe"]);
    assert.notEqual(write.code, 0, "the root file system is read-only, as in a pod");
    assert.match(write.stderr, /Read-only file system/);
  });

  test("GIVEN the harness PostgreSQL and radosgw WHEN capsule pg --create runs inside the image THEN the backup lands in the bucket, succeeded, dumped by the image's pg_dump 17", async (t) => {
    if (!requireImage(t)) return;
    const created = await inImage(["capsule", "pg", "--create"], env);
    assert.equal(created.code, 0, created.stderr);
    const id = created.stdout.trim();
    assert.ok(id, "capsule printed the backup id");

    const statefile = await statefileOf("postgresql", id);
    assert.equal(statefile.status, "succeeded");
    assert.match(statefile.tool["pg_dump"] ?? "", /^17\./, "dumped by the image's pg_dump, not the host's");
    assert.equal(statefile.tool["capsule"], pkgVersion);
    assert.ok(statefile.artifact && statefile.artifact.sizeBytes > 0);

    const client = s3Client(servers.s3);
    try {
      const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "capsule/" }));
      const keys = (listed.Contents ?? []).map((o) => o.Key ?? "");
      assert.ok(
        keys.some((k) => k.includes(id) && k.endsWith(statefile.artifact!.name)),
        `artifact of ${id} in ${keys.join(", ")}`,
      );
      assert.ok(keys.some((k) => k.includes(id) && k.endsWith("statefile.json")));
    } finally {
      client.destroy();
    }
  });

  test("GIVEN that backup WHEN capsule pg --verify runs inside the image THEN a throwaway PostgreSQL 17 under /tmp proves it", async (t) => {
    if (!requireImage(t)) return;
    const verified = await inImage(["capsule", "pg", "--verify", "--id", "latest"], env);
    assert.equal(verified.code, 0, verified.stderr);
    const [latest] = (await store.list({ cluster: CLUSTER, engine: "postgresql" })).filter(
      (e) => e.state === "succeeded",
    );
    assert.ok(latest);
    const { verification } = await statefileOf("postgresql", latest.ref.backupId);
    assert.equal(verification.status, "verified");
    assert.match(verification.method ?? "", /throwaway PostgreSQL 17/);
    assert.match(verification.details ?? "", /1 tables, 3000 rows match/);
  });

  test("GIVEN the harness Redis WHEN capsule redis --create and --verify run inside the image THEN the image's redis-server proves the backup", async (t) => {
    if (!requireImage(t)) return;
    const source = { ...env, REDIS_HOST: servers.redis.host, REDIS_PORT: String(servers.redis.port) };
    const created = await inImage(["capsule", "redis", "--create", "--target", "cache"], source);
    assert.equal(created.code, 0, created.stderr);
    const id = created.stdout.trim();
    const verified = await inImage(["capsule", "redis", "--verify", "--id", id], source);
    assert.equal(verified.code, 0, verified.stderr);
    const statefile = await statefileOf("redis", id);
    assert.equal(statefile.status, "succeeded");
    assert.equal(statefile.verification.status, "verified");
    assert.match(statefile.verification.method ?? "", /throwaway redis-server/);
  });
});
