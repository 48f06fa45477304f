/**
 * The quick start: capsule's main job on an embedded default — no cluster, no cloud account. Starts a throwaway
 * PostgreSQL and Redis on loopback, fills them with sample data, backs both up into a local-directory bucket
 * (file://), lists the backups, breaks the database, restores it non-destructively, and compiles the example plan
 * into CronJobs. Every step is a real `capsule` command; the commands are printed so you can run them yourself.
 *   scripts/demo.sh           (installs what is missing, builds, runs this)
 */
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { startPostgres } from "../test/harness/postgres.js";
import { startRedis } from "../test/harness/redis.js";

const root = path.resolve(import.meta.dirname, "..");
const bucketDir = process.env["CAPSULE_DEMO_DIR"] ?? "/tmp/capsule-demo-bucket";
mkdirSync(bucketDir, { recursive: true });

const pg = await startPostgres();
const redis = await startRedis();
try {
  const env = {
    ...process.env,
    CAPSULE_BUCKET: `file://${bucketDir}`,
    CAPSULE_CLUSTER: "demo",
    PGHOST: pg.host,
    PGPORT: String(pg.port),
    PGUSER: pg.user,
    PGPASSWORD: pg.password,
    PGDATABASE: "shop",
  };
  const capsule = (...args: string[]) => {
    console.log(`\n$ capsule ${args.join(" ")}`);
    return execFileSync(process.execPath, [path.join(root, "dist/src/cli.js"), ...args], {
      env,
      stdio: ["ignore", "pipe", "inherit"],
    })
      .toString()
      .trim();
  };
  const psql = (database: string, sql: string) =>
    execFileSync("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql], {
      env,
      encoding: "utf8",
    });

  console.log(
    `PostgreSQL on ${pg.host}:${pg.port}, Redis on ${redis.host}:${redis.port}, bucket file://${bucketDir}`,
  );
  psql("postgres", "CREATE DATABASE shop");
  psql(
    "shop",
    "CREATE TABLE orders (id serial PRIMARY KEY, item text, at timestamptz DEFAULT now()); INSERT INTO orders (item) SELECT 'item ' || g FROM generate_series(1, 50000) g;",
  );
  // DEBUG POPULATE is off by default in Redis 7; a script writes the sample keys instead.
  execFileSync("redis-cli", [
    "-p",
    String(redis.port),
    "EVAL",
    "for i = 1, 10000 do redis.call('SET', 'demo:' .. i, i) end",
    "0",
  ]);

  const pgId = capsule("pg", "--create");
  console.log(pgId);
  console.log(capsule("redis", "--create", "--host", redis.host, "--port", String(redis.port)));
  console.log(capsule("pg", "--list"));

  console.log("\n# an accident: half the orders are deleted");
  psql("shop", "DELETE FROM orders WHERE id % 2 = 0");
  console.log(capsule("pg", "--restore", "--id", pgId, "--yes"));
  console.log(psql("shop", "SELECT count(*) AS orders_after_restore FROM orders"));

  console.log(
    capsule("plan", "--dry-run", "--plans", path.join(root, "plans")).split("\n").slice(0, 25).join("\n"),
  );
  console.log("  … (the example plan compiles to one CronJob per target)");
  console.log(
    `\nDone. The bucket is in ${bucketDir}; every backup there has its statefile.json beside the data.`,
  );
} finally {
  await Promise.all([pg.stop(), redis.stop()]);
}
