/**
 * bench/gcs: a generated stream (500 MB by default) backed up into the FAKE GCS (test/fakes/gcs-server.ts, a process
 * of its own) through capsule's GCS store — a whole backup run: running statefile, hashed chunked resumable upload,
 * commit — and, in the same run, uploaded by @google-cloud/storage's plain createWriteStream(). Prints MB/s for each
 * and their peak RSS. The fake keeps objects in memory and computes crc32c and md5 in JavaScript, so absolute
 * figures are the fake's as much as capsule's; the comparison and capsule's memory are what this measures.
 * Figures only: no pass/fail on timing.
 *   npx tsx bench/gcs.ts [bytes]
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { buildForBench } from "./lib/build.js";
import { mbPerSecond, measure } from "./lib/measure.js";

const BYTES = Number(process.argv[2] ?? 500_000_000);
const ROUNDS = 2;

const build = buildForBench();
const server = spawn(process.execPath, [`${build}/test/fakes/gcs-server.js`, "bench"], {
  stdio: ["ignore", "pipe", "inherit"],
});
try {
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: server.stdout }).once("line", resolve);
    server.once("exit", (code) => reject(new Error(`fake GCS exited ${code}`)));
  });
  const env = { ...process.env, STORAGE_EMULATOR_HOST: url };
  const gen = `node ${build}/bench/lib/generate.js ${BYTES}`;
  const results: Record<"capsule" | "plain", { seconds: number; peakMb: number }[]> = {
    capsule: [],
    plain: [],
  };
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate the order so neither always runs against a fake with more in its memory.
    const order = round % 2 === 0 ? (["capsule", "plain"] as const) : (["plain", "capsule"] as const);
    for (const who of order) {
      const m =
        who === "capsule"
          ? await measure(
              `${gen} | $TIME node ${build}/bench/lib/upload-stdin.js gs://bench/capsule-${round} ${BYTES}`,
              env,
            )
          : await measure(
              `${gen} | $TIME node ${build}/bench/lib/gcs-plain-upload.js bench plain-${round}.bin`,
              env,
            );
      results[who].push(m);
    }
  }
  const best = (who: "capsule" | "plain") => Math.min(...results[who].map((r) => r.seconds));
  const peak = (who: "capsule" | "plain") => Math.max(...results[who].map((r) => r.peakMb));
  const c = best("capsule");
  const p = best("plain");
  console.log(`bench/gcs: ${(BYTES / 1e6).toFixed(0)} MB generated stream → fake GCS, best of ${ROUNDS}`);
  console.log(
    `  capsule GCS store (backup run)   ${c.toFixed(2)} s  ${mbPerSecond(BYTES, c)} MB/s  peak RSS ${peak("capsule").toFixed(0)} MB`,
  );
  console.log(
    `  plain createWriteStream()        ${p.toFixed(2)} s  ${mbPerSecond(BYTES, p)} MB/s  peak RSS ${peak("plain").toFixed(0)} MB`,
  );
  console.log(
    `  ratio                            capsule is ${(p / c).toFixed(2)}× the plain upload's throughput`,
  );
} finally {
  server.kill("SIGTERM");
}
