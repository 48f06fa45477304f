/**
 * bench/faults: the fault-injection matrix (#16). Every operation that touches data — a backup, a swap restore, an
 * in-place restore, a Redis online restore, a restore drill — is run once undisturbed to learn how long it takes,
 * then again and again with SIGINT, SIGTERM and SIGKILL sent to the real capsule process early, midway and late in
 * its work. After each fault the real servers and the bucket are inspected and one row is printed:
 *
 *   operation | fault | when | exit | data intact | left behind
 *
 * "data intact" means: the target holds exactly its old data or exactly the backup's (never a mix, never empty,
 * never missing), no interrupted backup is listed as succeeded, the previous good backup is still there, and
 * Redis is a writable master again. "left behind" is what capsule's own next run (`--check --yes`, or the next
 * restore) has to remove after a SIGKILL, or "nothing". Figures only, no pass/fail:
 *
 *   npx tsx bench/faults.ts [rows-in-thousands]
 */
import { readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { startPostgres } from "../test/harness/postgres.js";
import { startRadosgw } from "../test/harness/radosgw.js";
import { redisCommand, startRedis } from "../test/harness/redis.js";
import { createBucket, s3Env } from "../test/harness/s3.js";
import { startCapsule } from "../test/support/capsule-process.js";
import { withClient } from "../src/engines/postgres/sql.js";
import { openBackupStore } from "../src/runtime/bucket.js";

const ROWS = Number(process.argv[2] ?? 400) * 1000;
const SIGNALS = ["SIGINT", "SIGTERM", "SIGKILL"] as const;
const WHEN = { early: 0.1, mid: 0.5, late: 0.9 } as const;

const [pg, redis, rgw] = await Promise.all([startPostgres(), startRedis(), startRadosgw()]);
const rows: string[][] = [];
let childEnv: NodeJS.ProcessEnv = {};
try {
  await createBucket(rgw, "faults");
  const bucket = "s3://faults/capsule";
  const env: NodeJS.ProcessEnv = {
    ...s3Env(rgw),
    CAPSULE_BUCKET: bucket,
    CAPSULE_CLUSTER: "faults",
    PGHOST: pg.host,
    PGPORT: String(pg.port),
    PGUSER: pg.user,
    PGPASSWORD: pg.password,
    PGDATABASE: "shop",
    REDIS_HOST: redis.host,
    REDIS_PORT: String(redis.port),
  };
  childEnv = env;
  const store = openBackupStore({ bucket }, { ...process.env, ...env });
  const pgConn = (database: string) => ({
    host: pg.host,
    port: pg.port,
    user: pg.user,
    password: pg.password,
    database,
  });
  const query = <T extends Record<string, unknown>>(database: string, text: string) =>
    withClient(pgConn(database), database, async (c) => (await c.query<T>(text)).rows);

  // --- PostgreSQL: "shop" with an index; the backup has ROWS rows, the live database one row more. -------------
  await query("postgres", "DROP DATABASE IF EXISTS shop WITH (FORCE)");
  await query("postgres", "CREATE DATABASE shop");
  await query(
    "shop",
    `CREATE TABLE orders (id bigint PRIMARY KEY, body text);
     INSERT INTO orders SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, ${ROWS}) g`,
  );
  const backup = await runToEnd(["pg", "--create", "--database", "shop"]);
  const backupId = backup.stdout.trim().split("\n").at(-1)!;
  await query("shop", `INSERT INTO orders VALUES (0, 'written after the backup')`);
  const shopState = async (): Promise<string> => {
    const dbs = await query<{ datname: string }>("postgres", "SELECT datname FROM pg_database");
    if (!dbs.some((d) => d.datname === "shop")) return "MISSING";
    const r = await query<{ n: string; has0: boolean; idx: string }>(
      "shop",
      `SELECT count(*)::text AS n, bool_or(id = 0) AS has0,
              (SELECT count(*)::text FROM pg_indexes WHERE tablename = 'orders') AS idx FROM orders`,
    ).catch((error: Error) => [{ n: `error: ${error.message}`, has0: false, idx: "0" }]);
    const { n, has0, idx } = r[0]!;
    if (idx === "0") return `NO INDEX (${n} rows)`;
    if (Number(n) === ROWS + 1 && has0) return "old";
    if (Number(n) === ROWS && !has0) return "backup";
    return `MIXED (${n} rows)`;
  };
  const resetShop = async () => {
    // Back to the "old" state for the next fault, whatever the last one left.
    for (const { datname } of await query<{ datname: string }>(
      "postgres",
      "SELECT datname FROM pg_database WHERE datname LIKE 'shop%' OR datname LIKE 'capsule_verify%'",
    ))
      await query("postgres", `DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
    await query("postgres", "CREATE DATABASE shop");
    await query(
      "shop",
      `CREATE TABLE orders (id bigint PRIMARY KEY, body text);
       INSERT INTO orders SELECT g, repeat(md5(g::text), 8) FROM generate_series(0, ${ROWS}) g;
       UPDATE orders SET body = 'written after the backup' WHERE id = 0`,
    );
  };
  const pgDebris = async () => {
    const dbs = await query<{ datname: string }>(
      "postgres",
      "SELECT datname FROM pg_database WHERE datname LIKE '%capsule%' OR datname LIKE '%pre_restore%'",
    );
    const dirs = readdirSync(tmpdir()).filter((d) => d.startsWith("capsule-verify-pg-"));
    return [...dbs.map((d) => d.datname), ...dirs.map((d) => `${tmpdir()}/${d}`)];
  };
  const dropKept = async () => {
    for (const { datname } of await query<{ datname: string }>(
      "postgres",
      "SELECT datname FROM pg_database WHERE datname LIKE 'shop_pre_restore_%'",
    ))
      await query("postgres", `DROP DATABASE "${datname}" WITH (FORCE)`);
  };

  await matrix({
    operation: "pg backup",
    args: ["pg", "--create", "--database", "shop"],
    before: () => Promise.resolve(),
    check: async () => {
      const entries = await store.list({ cluster: "faults", engine: "postgresql" });
      const good = entries.find((e) => e.ref.backupId === backupId)?.state === "succeeded";
      const lying = entries.filter(
        (e) => e.ref.backupId !== backupId && e.state === "succeeded" && !e.statefile?.artifact,
      );
      const source = await shopState();
      const newest = entries.find((e) => e.ref.backupId !== backupId);
      const interrupted = newest ? `newest run ${newest.state}` : "no new run";
      return {
        intact: good && lying.length === 0 && source === "old",
        detail: `${good ? "previous backup kept" : "PREVIOUS BACKUP GONE"}, ${interrupted}, source ${source}`,
      };
    },
    debris: () => Promise.resolve([]),
  });

  for (const [operation, extra] of [
    ["pg restore (swap)", []],
    ["pg restore (in place)", ["--in-place"]],
  ] as const) {
    await matrix({
      operation,
      args: ["pg", "--restore", "--id", backupId, "--database", "shop", "--yes", ...extra],
      startPattern: /restoring/,
      ...(extra.length === 0 ? { failpoint: "pg-swap-between-renames" } : {}),
      before: resetShop,
      check: async () => {
        const state = await shopState();
        await dropKept();
        return { intact: state === "old" || state === "backup", detail: `shop holds ${state}` };
      },
      debris: pgDebris,
      cleanup: ["pg", "--check", "--yes", "--database", "shop"],
    });
  }

  await matrix({
    operation: "pg verify drill",
    args: ["pg", "--verify", "--id", backupId],
    startPattern: /starting a throwaway/,
    before: () => Promise.resolve(),
    check: async () => {
      const entry = await store.get({ cluster: "faults", engine: "postgresql", backupId });
      const marked = entry.statefile?.verification?.status;
      return {
        intact: entry.state === "succeeded" && marked !== "failed",
        detail: `verification ${marked ?? "none"}`,
      };
    },
    debris: pgDebris,
    cleanup: ["pg", "--check", "--yes"],
  });

  // --- Redis: the backup has ROWS/10 keys; the live server one more, and it must end a writable master. ---------
  const redisKeys = Math.max(1000, ROWS / 10);
  const cli = (command: string) => redisCommand(redis.host, redis.port, command, 60_000);
  await cli("FLUSHALL");
  await cli(`EVAL "for i=1,${redisKeys} do redis.call('SET','k'..i,string.rep('v',200)) end" 0`);
  const redisBackup = await runToEnd(["redis", "--create"]);
  const redisBackupId = redisBackup.stdout.trim().split("\n").at(-1)!;
  await cli("SET written-after-backup 1");
  const redisState = async () => {
    const role = await cli("ROLE");
    const write = await cli("SET capsule-fault-probe 1");
    const size = Number((await cli("DBSIZE")).replace(":", "")) - (write === "+OK" ? 1 : 0);
    const after = (await cli("EXISTS written-after-backup")) === ":1";
    const data =
      size === redisKeys + 1 && after
        ? "old"
        : size === redisKeys && !after
          ? "backup"
          : `MIXED (${size} keys)`;
    await cli("DEL capsule-fault-probe");
    return { writable: write === "+OK", role, data };
  };
  await matrix({
    operation: "redis restore (online)",
    args: ["redis", "--restore", "--id", redisBackupId, "--yes"],
    startPattern: /serving the backup/,
    before: async () => {
      if ((await cli("ROLE")) === "*5") await runToEnd(["redis", "--recover"]);
      await cli("FLUSHALL");
      await cli(`EVAL "for i=1,${redisKeys} do redis.call('SET','k'..i,string.rep('v',200)) end" 0`);
      await cli("SET written-after-backup 1");
    },
    check: async () => {
      const s = await redisState();
      return {
        intact: s.writable && (s.data === "old" || s.data === "backup"),
        detail: `${s.data}, ${s.writable ? "writable" : `NOT WRITABLE (${s.role})`}`,
      };
    },
    // ROLE answers an array of 3 on a master, of 5 on a replica.
    debris: async () => ((await cli("ROLE")) === "*5" ? ["a replica of capsule's vanished listener"] : []),
    cleanup: ["redis", "--recover"],
  });

  await matrix({
    operation: "redis verify drill",
    args: ["redis", "--verify", "--id", redisBackupId],
    startPattern: /starting a throwaway redis-server/,
    before: () => Promise.resolve(),
    check: async () => {
      const entry = await store.get({ cluster: "faults", engine: "redis", backupId: redisBackupId });
      const marked = entry.statefile?.verification?.status;
      return {
        intact: entry.state === "succeeded" && marked !== "failed",
        detail: `verification ${marked ?? "none"}`,
      };
    },
    debris: () =>
      Promise.resolve(
        readdirSync(tmpdir())
          .filter((d) => d.startsWith("capsule-verify-redis-"))
          .map((d) => `${tmpdir()}/${d}`),
      ),
  });
} finally {
  printTable(rows);
  await Promise.allSettled([pg.stop(), redis.stop(), rgw.stop()]);
}

interface Scenario {
  operation: string;
  args: string[];
  /** The stderr line at which the work that touches data begins; early/mid/late are fractions of what follows. */
  startPattern?: RegExp;
  before: () => Promise<void>;
  check: () => Promise<{ intact: boolean; detail: string }>;
  debris: () => Promise<string[]>;
  /** A failpoint (src/util/failpoint.ts) at the riskiest instant, for one more row per signal: "at <name>". */
  failpoint?: string;
  /** What an operator runs after a SIGKILL to find and remove capsule's leftovers. */
  cleanup?: string[];
}

async function matrix(s: Scenario): Promise<void> {
  await s.before();
  const first = startCapsule(s.args, childEnv);
  if (s.startPattern) await first.waitForStderr(s.startPattern);
  const t0 = performance.now();
  const baseline = { code: (await first.exited).code };
  const duration = performance.now() - t0;
  rows.push([s.operation, "none", "-", String(baseline.code), (await s.check()).detail, "-"]);
  console.error(
    `bench/faults: ${s.operation} takes ${(duration / 1000).toFixed(1)} s undisturbed after ${s.startPattern ? String(s.startPattern) : "its start"}`,
  );
  const moments: Array<[string, number | string]> = [
    ...Object.entries(WHEN),
    ...(s.failpoint ? [[`at ${s.failpoint}`, s.failpoint] as [string, string]] : []),
  ];
  for (const signal of SIGNALS) {
    for (const [when, moment] of moments) {
      await s.before();
      const failpoint = typeof moment === "string" ? moment : undefined;
      const child = startCapsule(s.args, childEnv, failpoint ? { failpoints: [failpoint] } : {});
      if (failpoint) {
        await child.waitForStderr(new RegExp(`failpoint ${failpoint} reached`));
      } else {
        if (s.startPattern) await child.waitForStderr(s.startPattern);
        await new Promise((r) => setTimeout(r, duration * (moment as number)));
      }
      child.signal(signal);
      const exit = await child.exited;
      let { intact, detail } = await s.check();
      // A killed drill's guard stops its server and removes its directory on its own; give it a few seconds.
      let left = await s.debris();
      for (let i = 0; i < 50 && left.length > 0 && signal === "SIGKILL"; i++) {
        await new Promise((r) => setTimeout(r, 200));
        left = await s.debris();
      }
      let leftNote = left.length === 0 ? "nothing" : left.join(", ");
      if (left.length > 0 && s.cleanup) {
        const cleanup = await runToEnd(s.cleanup);
        left = await s.debris();
        leftNote = `${leftNote} → ${left.length === 0 ? "removed by" : "NOT removed by"} capsule ${s.cleanup.join(" ")} (exit ${cleanup.code})`;
        const after = await s.check();
        intact = after.intact;
        detail = `${detail}; after the cleanup: ${after.detail}`;
      }
      const lastLine = child.stderr().trim().split("\n").at(-1) ?? "";
      rows.push([
        s.operation,
        signal,
        when,
        exit.code !== null ? String(exit.code) : (exit.signal ?? "?"),
        `${intact ? "yes" : "NO"}: ${detail}`,
        leftNote,
      ]);
      console.error(`  ${signal} ${when}: exit ${exit.code ?? exit.signal}; ${detail}; ${lastLine}`);
    }
  }
}

async function runToEnd(args: string[]) {
  const child = startCapsule(args, childEnv);
  const { code } = await child.exited;
  return { code, stdout: child.stdout(), stderr: child.stderr() };
}

function printTable(table: string[][]): void {
  const header = ["operation", "fault", "when", "exit", "data intact", "left behind"];
  const all = [header, ...table];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const r of table) console.log(line(r));
}
