/**
 * bench/azure: a generated stream (500 MB by default) uploaded to the same Azurite, in the same run, through
 * capsule's Azure store (a whole backup run: running statefile, hashed and MD5-checked blocks, commit) and through
 * the Azure SDK's plain `uploadStream` of the same bytes. Prints MB/s for each, their ratio, and each one's peak RSS.
 * Azurite writes every block to its disk and shares the 2 cores with both uploaders, so the absolute figures are
 * the emulator's; the ratio and the memory are what this measures. Figures only: no pass/fail on timing.
 *   npx tsx bench/azure.ts [bytes]
 */
import { azureEnv, createContainer, startAzurite } from "../test/harness/azurite.js";
import { buildForBench } from "./lib/build.js";
import { mbPerSecond, measure } from "./lib/measure.js";

const BYTES = Number(process.argv[2] ?? 500_000_000);
const ROUNDS = 2;

const build = buildForBench();
const azurite = await startAzurite();
try {
  const env = { ...process.env, ...azureEnv(azurite) };
  const gen = `node ${build}/bench/lib/generate.js ${BYTES}`;
  type Who = "capsule" | "sdk";
  const results: Record<Who, { seconds: number; peakMb: number }[]> = { capsule: [], sdk: [] };
  for (let round = 0; round < ROUNDS; round++) {
    // A fresh container per round, so neither uploader writes into a store the other has filled.
    const container = `bench-${round}`;
    await createContainer(azurite, container);
    const order: Who[] = round % 2 === 0 ? ["capsule", "sdk"] : ["sdk", "capsule"];
    for (const who of order) {
      results[who].push(
        who === "capsule"
          ? await measure(
              `${gen} | $TIME node ${build}/bench/lib/upload-stdin.js azure://${container}/capsule ${BYTES}`,
              env,
            )
          : await measure(
              `${gen} | $TIME node ${build}/bench/lib/azure-sdk-upload.js ${container} sdk/round-${round}.bin`,
              env,
            ),
      );
    }
  }
  const best = (who: Who) => Math.min(...results[who].map((r) => r.seconds));
  const peak = (who: Who) => Math.max(...results[who].map((r) => r.peakMb));
  const c = best("capsule");
  const s = best("sdk");
  console.log(`bench/azure: ${(BYTES / 1e6).toFixed(0)} MB generated stream → Azurite, best of ${ROUNDS}`);
  console.log(
    `  capsule Azure store   ${c.toFixed(2)} s  ${mbPerSecond(BYTES, c)} MB/s  peak RSS ${peak("capsule").toFixed(0)} MB`,
  );
  console.log(
    `  SDK uploadStream      ${s.toFixed(2)} s  ${mbPerSecond(BYTES, s)} MB/s  peak RSS ${peak("sdk").toFixed(0)} MB`,
  );
  console.log(`  ratio                 capsule is ${(s / c).toFixed(2)}× the SDK's throughput`);
} finally {
  await azurite.stop();
}
