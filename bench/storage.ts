/**
 * bench/storage: a 1 GiB generated stream uploaded to the same radosgw, in the same run, through capsule's S3
 * store (a whole backup run: running statefile, hashed multipart upload, commit) and through `aws s3 cp -`, the
 * pipeline a user would write by hand. Prints MB/s for each, their ratio, and capsule's peak RSS.
 * Goals (issue 2): throughput ≥ the awscli pipeline, peak RSS < 150 MB. Figures only: no pass/fail on timing.
 *   npx tsx bench/storage.ts [bytes]
 */
import { startRadosgw } from "../test/harness/radosgw.js";
import { createBucket, s3Env } from "../test/harness/s3.js";
import { buildForBench } from "./lib/build.js";
import { awsCli, mbPerSecond, measure } from "./lib/measure.js";

const BYTES = Number(process.argv[2] ?? 1 << 30);
const ROUNDS = 2;

const build = buildForBench();
const rgw = await startRadosgw();
try {
  await createBucket(rgw, "bench");
  const env = { ...process.env, ...s3Env(rgw) };
  const gen = `node ${build}/bench/lib/generate.js ${BYTES}`;
  const results: Record<"capsule" | "awscli", { seconds: number; peakMb: number }[]> = {
    capsule: [],
    awscli: [],
  };
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate the order so neither always runs on a warmer server.
    const order = round % 2 === 0 ? (["capsule", "awscli"] as const) : (["awscli", "capsule"] as const);
    for (const who of order) {
      const m =
        who === "capsule"
          ? await measure(
              `${gen} | $TIME node ${build}/bench/lib/upload-stdin.js s3://bench/capsule ${BYTES}`,
              env,
            )
          : await measure(
              `${gen} | $TIME ${awsCli()} --endpoint-url ${rgw.endpoint} s3 cp - s3://bench/awscli/round-${round}.bin`,
              env,
            );
      results[who].push(m);
      // The memstore OSD holds everything in RAM: empty the bucket so rounds do not fill it.
      await measure(`${awsCli()} --endpoint-url ${rgw.endpoint} s3 rm --recursive --quiet s3://bench/`, env);
    }
  }
  const best = (who: "capsule" | "awscli") => Math.min(...results[who].map((r) => r.seconds));
  const peak = (who: "capsule" | "awscli") => Math.max(...results[who].map((r) => r.peakMb));
  const c = best("capsule");
  const a = best("awscli");
  console.log(
    `bench/storage: ${(BYTES / 2 ** 30).toFixed(2)} GiB generated stream → radosgw, best of ${ROUNDS}`,
  );
  console.log(
    `  capsule S3 store  ${c.toFixed(2)} s  ${mbPerSecond(BYTES, c)} MB/s  peak RSS ${peak("capsule").toFixed(0)} MB (goal < 150)`,
  );
  console.log(
    `  aws s3 cp -       ${a.toFixed(2)} s  ${mbPerSecond(BYTES, a)} MB/s  peak RSS ${peak("awscli").toFixed(0)} MB`,
  );
  console.log(`  ratio             capsule is ${(a / c).toFixed(2)}× the awscli throughput (goal ≥ 1.00)`);
} finally {
  await rgw.stop();
}
