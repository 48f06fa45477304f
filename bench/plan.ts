/**
 * bench/plan: `capsule plan --dry-run --from-files DIR` over 2,000 CnvrgApps (all three engines each, so 6,000
 * CronJobs), as a whole process from the compiled JavaScript — what an operator or CI job would run.
 * Goal (issue 4): under 2 s and 250 MB peak RSS. Peak RSS is the child's own `ru_maxrss`, read by a preload that
 * prints `process.resourceUsage()` on exit, so the number does not depend on /usr/bin/time being installed.
 *
 *   npx tsx bench/plan.ts [apps]
 */
import { buildForBench, rusagePreload } from "./lib/build.js";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import yaml from "js-yaml";

const APPS = Number(process.argv[2] ?? 2000);
const GOAL_SECONDS = 2;
const GOAL_MB = 250;

function cnvrgApp(i: number): unknown {
  const backup = (rotation: number, period: string) => ({
    enabled: true,
    bucketRef: "cp-object-storage",
    rotation,
    period,
  });
  return {
    apiVersion: "mlops.cnvrg.io/v1",
    kind: "CnvrgApp",
    metadata: { name: `app-${i}`, namespace: `tenant-${i % 250}` },
    spec: {
      dbs: {
        pg: {
          enabled: true,
          svcName: "postgres",
          port: 5432,
          credsRef: "pg-creds",
          backup: backup(5, "24h"),
        },
        redis: {
          enabled: true,
          svcName: "redis",
          port: 6379,
          credsRef: "redis-creds",
          backup: backup(3, "6h"),
        },
        es: {
          enabled: true,
          svcName: "elasticsearch",
          port: 9200,
          credsRef: "es-creds",
          backup: backup(7, "12h"),
        },
      },
    },
  };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "capsule-bench-plan-"));
  try {
    for (let i = 0; i < APPS; i++) await writeFile(join(dir, `app-${i}.yaml`), yaml.dump(cnvrgApp(i)));

    const build = buildForBench();
    const rusage = rusagePreload(build);

    const started = process.hrtime.bigint();
    const child = spawnSync(
      process.execPath,
      ["--import", rusage, join(build, "src", "cli.js"), "plan", "--dry-run", "--from-files", dir],
      // cwd without a ./plans folder: only the scanned apps are compiled.
      { cwd: dir, encoding: "utf8", maxBuffer: 1 << 30 },
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (child.status !== 0) throw new Error(`capsule plan failed (${child.status}): ${child.stderr}`);
    const cronJobs = child.stdout.split("\nkind: CronJob\n").length - 1;
    const rssKb = Number(/BENCH_RSS_KB=(\d+)/.exec(child.stderr)?.[1] ?? NaN);
    const mb = rssKb / 1024;
    const outputMb = Buffer.byteLength(child.stdout) / 1024 / 1024;

    console.log(
      `capsule plan --dry-run --from-files: ${APPS} CnvrgApps → ${cronJobs} CronJobs (${outputMb.toFixed(1)} MB YAML)`,
    );
    console.log(
      `  wall   ${seconds.toFixed(2)} s   (goal < ${GOAL_SECONDS} s)  ${seconds < GOAL_SECONDS ? "ok" : "MISSED"}`,
    );
    console.log(`  peak   ${mb.toFixed(0)} MB RSS (goal < ${GOAL_MB} MB)  ${mb < GOAL_MB ? "ok" : "MISSED"}`);
    console.log(`  node   ${execFileSync(process.execPath, ["--version"], { encoding: "utf8" }).trim()}`);
    if (cronJobs !== APPS * 3) throw new Error(`expected ${APPS * 3} CronJobs, got ${cronJobs}`);
    if (seconds >= GOAL_SECONDS || mb >= GOAL_MB) process.exitCode = 1;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
