/**
 * The test suite's entry point (`npm test`):
 *
 *   tsx test/run.ts [substring ...]
 *
 * Finds test/**\/*.test.ts (only those whose path contains one of the substrings, if any are given), starts
 * PostgreSQL, Redis, radosgw and Azurite once, runs the files with Node's test runner (servers handed over in
 * CAPSULE_TEST_SERVERS), stops the servers whatever happens, and ends with the line "N passed, N failed".
 * Exits non-zero if a test failed, if no test ran, or if the servers could not start.
 */
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { formatHarnessError, SERVERS_ENV, startAllServers, type StartedServers } from "./harness/index.js";
import { isShuttingDown, registerTeardown } from "./harness/process.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
process.chdir(root);

function findTestFiles(filters: string[]): string[] {
  const files = readdirSync("test", { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".test.ts") && !f.split(sep).includes("node_modules"))
    .map((f) => join("test", f))
    .sort();
  return filters.length === 0 ? files : files.filter((f) => filters.some((s) => f.includes(s)));
}

// eslint-disable-next-line no-control-regex
const ansi = /\x1b\[[0-9;]*m/g;

interface Counts {
  pass: number;
  fail: number;
  cancelled: number;
  skipped: number;
  todo: number;
}

function parseCounts(output: string): Counts | undefined {
  const counts: Partial<Record<keyof Counts, number>> = {};
  for (const line of output.replace(ansi, "").split("\n")) {
    const m = /^ℹ (pass|fail|cancelled|skipped|todo) (\d+)\s*$/.exec(line.trim());
    if (m?.[1] !== undefined && m[2] !== undefined) counts[m[1] as keyof Counts] = Number(m[2]);
  }
  if (counts.pass === undefined || counts.fail === undefined) return undefined;
  return { pass: counts.pass, fail: counts.fail, cancelled: 0, skipped: 0, todo: 0, ...counts };
}

/** Run Node's test runner on the files; resolve with its exit code and everything it printed on stdout. */
function runTests(files: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; output: string }> {
  const args = ["--import", "tsx", "--test", "--test-reporter=spec", "--test-concurrency=2", ...files];
  return new Promise((resolve, reject) => {
    // Its own process group, so an interrupt can stop it and every test process under it.
    const child = spawn(process.execPath, args, {
      stdio: ["ignore", "pipe", "inherit"],
      env,
      detached: true,
    });
    const pid = child.pid;
    const unregister = registerTeardown({
      name: "node --test",
      stop: async () => {
        if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
        try {
          process.kill(-pid, "SIGTERM");
        } catch {
          return;
        }
        const killer = setTimeout(() => {
          try {
            process.kill(-pid, "SIGKILL");
          } catch {
            // gone
          }
        }, 5000);
        await new Promise((r) => child.once("exit", r));
        clearTimeout(killer);
      },
      killSync: () => {
        if (pid === undefined) return [];
        try {
          process.kill(-pid, "SIGKILL");
        } catch {
          // gone
        }
        return [pid];
      },
    });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      output += chunk;
      process.stdout.write(chunk);
    });
    child.once("error", (err) => {
      unregister();
      reject(err);
    });
    child.once("close", (code, signal) => {
      unregister();
      resolve({ code: code ?? (signal ? 128 : 1), output });
    });
  });
}

async function main(): Promise<number> {
  const filters = process.argv.slice(2);
  const files = findTestFiles(filters);
  if (files.length === 0) {
    console.error(`no test files found${filters.length ? ` matching ${filters.join(", ")}` : ""}`);
    console.log("0 passed, 0 failed");
    return 1;
  }
  console.log(`test files (${files.length}):\n${files.map((f) => `  ${f}`).join("\n")}`);

  console.log("starting PostgreSQL, Redis, radosgw and Azurite...");
  const t0 = performance.now();
  let started: StartedServers;
  try {
    started = await startAllServers();
  } catch (err) {
    if (isShuttingDown()) return new Promise<number>(() => undefined); // interrupted: the signal handler exits
    console.error(`test servers could not start:\n${formatHarnessError(err)}`);
    console.log("0 passed, 0 failed");
    return 1;
  }
  const { pg, redis, s3, azure } = started.servers;
  const ms = started.startupMs;
  console.log(
    `servers ready in ${((performance.now() - t0) / 1000).toFixed(1)} s: ` +
      `postgres ${pg.version} 127.0.0.1:${pg.port} (${(ms.pg / 1000).toFixed(1)} s), ` +
      `redis 127.0.0.1:${redis.port} (${(ms.redis / 1000).toFixed(1)} s), ` +
      `s3 ${s3.endpoint} (${(ms.s3 / 1000).toFixed(1)} s), ` +
      `azure ${azure.blobEndpoint} (${(ms.azure / 1000).toFixed(1)} s)`,
  );

  let result: { code: number; output: string };
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, [SERVERS_ENV]: JSON.stringify(started.servers) };
    if (process.stdout.isTTY) env["FORCE_COLOR"] ??= "1";
    result = await runTests(files, env);
  } finally {
    const t1 = performance.now();
    await started.stop();
    console.log(`servers stopped in ${((performance.now() - t1) / 1000).toFixed(1)} s`);
  }

  if (isShuttingDown()) {
    // Interrupted: the signal handler stops the servers and exits; there are no counts to report.
    return new Promise<number>(() => undefined);
  }
  const counts = parseCounts(result.output);
  if (counts === undefined) {
    console.error(`could not read the test counts from the test runner's output (exit code ${result.code})`);
    console.log("0 passed, 1 failed");
    return 1;
  }
  const failed = counts.fail + counts.cancelled;
  const ran = counts.pass + failed;
  if (ran === 0) console.error("no test ran");
  if (result.code !== 0 && failed === 0) console.error(`the test runner exited with code ${result.code}`);
  console.log(
    `${counts.pass} passed, ${failed} failed${counts.skipped ? `, ${counts.skipped} skipped` : ""}`,
  );
  return failed > 0 || ran === 0 || result.code !== 0 ? 1 : 0;
}

process.exitCode = await main().catch((err: unknown) => {
  console.error(formatHarnessError(err));
  console.log("0 passed, 1 failed");
  return 1;
});
