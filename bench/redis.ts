/**
 * bench/redis: capsule's Redis backup against the pipeline an operator would write by hand,
 * `redis-cli --rdb - | aws s3 cp - s3://…`, on the same server and the same S3 (a throwaway radosgw), in the same
 * run; then capsule's online restore into a fresh server. Peak RSS is the child's own `ru_maxrss` (a preload prints
 * `process.resourceUsage()` on exit), capsule runs from compiled JavaScript as it ships.
 *
 *   npx tsx bench/redis.ts [keys=1000000] [random-MB=0]
 *
 * The dataset is `DEBUG POPULATE <keys>` (short, compressible values), plus `random-MB` of incompressible 1 KiB
 * values when asked (e.g. 200 for a ~200 MB RDB). Goals (issue 6): within 1.2x of the hand-written pipeline, RSS
 * under 150 MB. The server runs with repl-diskless-sync-delay 0 for both.
 */
import { buildForBench, rusagePreload } from "./lib/build.js";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { RedisClient } from "../src/engines/redis/client.js";
import { freePort } from "../test/harness/ports.js";
import { makeTempDir, requireBinary, startDaemon, stopAll, waitFor } from "../test/harness/process.js";
import { startRadosgw } from "../test/harness/radosgw.js";
import { redisCommand } from "../test/harness/redis.js";
import { createBucket, s3Env } from "../test/harness/s3.js";

const KEYS = Number(process.argv[2] ?? 1_000_000);
const RANDOM_MB = Number(process.argv[3] ?? 0);
const GOAL_RATIO = 1.2;
const GOAL_MB = 150;

async function startServer(): Promise<{ port: number; stop: () => Promise<void> }> {
  const dir = makeTempDir("capsule-bench-redis-");
  const port = await freePort();
  const daemon = startDaemon(
    requireBinary("redis-server", "redis-server"),
    [
      ...["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no"],
      ...["--enable-debug-command", "yes", "--repl-diskless-sync-delay", "0", "--protected-mode", "no"],
    ],
    { name: "redis-server", logFile: join(dir, "redis.log"), cwd: dir },
  );
  await waitFor("redis-server", async () => (await redisCommand("127.0.0.1", port, "PING")) === "+PONG", {
    timeoutMs: 15_000,
    daemons: [daemon],
  });
  return { port, stop: () => daemon.stop() };
}

/** Runs a command; resolves with wall seconds and the peak RSS it printed (capsule only). */
function timed(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ seconds: number; rssMb?: number; stdout: string }> {
  return new Promise((resolvePromise, reject) => {
    const t0 = performance.now();
    const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("close", (code) => {
      const seconds = (performance.now() - t0) / 1000;
      if (code !== 0) return reject(new Error(`${command} ${args.join(" ")} exited ${code}: ${stderr}`));
      const rss = /BENCH_RSS_KB=(\d+)/.exec(stderr)?.[1];
      resolvePromise({ seconds, stdout, ...(rss ? { rssMb: Number(rss) / 1024 } : {}) });
    });
  });
}

async function main(): Promise<void> {
  const build = buildForBench();
  const rusage = rusagePreload(build);
  const cli = join(build, "src", "cli.js");

  console.log("starting radosgw and redis-server…");
  const [s3, source] = await Promise.all([startRadosgw(), startServer()]);
  const bucketName = `bench-redis-${randomBytes(4).toString("hex")}`;
  await createBucket(s3, bucketName);
  const client = await RedisClient.connect({ host: "127.0.0.1", port: source.port });
  await client.call("DEBUG", "POPULATE", String(KEYS));
  const batch = 1000;
  for (let mb = 0; mb < RANDOM_MB; mb++) {
    const pending: Array<Promise<unknown>> = [];
    for (let i = 0; i < batch; i++) pending.push(client.call("SET", `random:${mb}:${i}`, randomBytes(1024)));
    await Promise.all(pending);
  }
  const dbsize = await client.text("DBSIZE");
  const memory = /used_memory_human:(\S+)/.exec(await client.text("INFO", "memory"))?.[1];
  client.close();
  console.log(`dataset: ${dbsize} keys, used_memory ${memory}`);

  const env = {
    ...process.env,
    ...s3Env(s3),
    CAPSULE_BUCKET: `s3://${bucketName}/capsule`,
    REDIS_HOST: "127.0.0.1",
    REDIS_PORT: String(source.port),
  };

  const rows: Array<{ name: string; seconds: number; rssMb?: number }> = [];
  let id = "";
  for (let round = 0; round < 2; round++) {
    const peer = await timed(
      "bash",
      [
        "-o",
        "pipefail",
        "-c",
        `redis-cli -p ${source.port} --rdb - 2>/dev/null | aws s3 cp - s3://${bucketName}/peer/dump.rdb --endpoint-url ${s3.endpoint} --only-show-errors`,
      ],
      env,
    );
    const ours = await timed(
      process.execPath,
      ["--import", rusage, cli, "redis", "--create", "--cluster", "bench"],
      env,
    );
    id = ours.stdout.trim();
    rows.push({ name: `peer   redis-cli --rdb - | aws s3 cp - (round ${round + 1})`, seconds: peer.seconds });
    rows.push({ name: `capsule redis --create               (round ${round + 1})`, ...ours });
  }
  const target = await startServer();
  const restore = await timed(
    process.execPath,
    ["--import", rusage, cli, "redis", "--restore", "--yes", "--id", id, "--cluster", "bench"],
    { ...env, REDIS_PORT: String(target.port) },
  );
  rows.push({ name: "capsule redis --restore (fresh server)", ...restore });

  for (const r of rows) {
    console.log(
      `  ${r.name.padEnd(48)} ${r.seconds.toFixed(2).padStart(7)} s${r.rssMb ? `  peak RSS ${r.rssMb.toFixed(0)} MB` : ""}`,
    );
  }
  const best = (prefix: string) =>
    Math.min(...rows.filter((r) => r.name.startsWith(prefix)).map((r) => r.seconds));
  const ratio = best("capsule redis --create") / best("peer");
  const rss = Math.max(...rows.filter((r) => r.rssMb).map((r) => r.rssMb!));
  console.log(
    `capsule/peer (best of 2): ${ratio.toFixed(2)}x (goal <= ${GOAL_RATIO}x) ${ratio <= GOAL_RATIO ? "OK" : "MISSED"}; ` +
      `peak RSS ${rss.toFixed(0)} MB (goal < ${GOAL_MB} MB) ${rss < GOAL_MB ? "OK" : "MISSED"}`,
  );
  await target.stop();
  await source.stop();
  await s3.stop();
}

try {
  await main();
} finally {
  await stopAll();
}
