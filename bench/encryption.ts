/**
 * bench/encryption: the cost of client-side encryption (age, docs/adr/0011). A 1 GiB generated stream is backed up
 * into radosgw through capsule's BackupStore in the clear and encrypted to two recipients, then read back through
 * the restore path (digests checked; decrypted when encrypted). Prints seconds, MB/s and peak RSS of each, so
 * memory can be seen to stay flat. Figures only: no pass/fail on timing.
 *   npx tsx bench/encryption.ts [bytes]
 */
import { generateX25519Identity, identityToRecipient } from "age-encryption";
import { startRadosgw } from "../test/harness/radosgw.js";
import { createBucket, s3Env } from "../test/harness/s3.js";
import { buildForBench } from "./lib/build.js";
import { awsCli, mbPerSecond, measure } from "./lib/measure.js";

const BYTES = Number(process.argv[2] ?? 1 << 30);

const build = buildForBench();
const identity = await generateX25519Identity();
const recipients = [
  await identityToRecipient(identity),
  await identityToRecipient(await generateX25519Identity()),
];
const rgw = await startRadosgw();
try {
  await createBucket(rgw, "bench");
  const env = { ...process.env, ...s3Env(rgw) };
  const gen = `node ${build}/bench/lib/generate.js ${BYTES}`;
  const rows: string[] = [];
  for (const mode of ["plain", "age"] as const) {
    const modeEnv =
      mode === "age"
        ? { ...env, BENCH_ENCRYPT_TO: recipients.join(","), CAPSULE_AGE_IDENTITY: identity }
        : env;
    const up = await measure(
      `${gen} | $TIME node ${build}/bench/lib/upload-stdin.js s3://bench/capsule ${BYTES}`,
      modeEnv,
    );
    const id = up.stdout.trim().split(" ")[0]!;
    const down = await measure(
      `$TIME node ${build}/bench/lib/read-artifact.js s3://bench/capsule ${id}`,
      modeEnv,
    );
    if (Number(down.stdout.trim()) !== BYTES)
      throw new Error(`read ${down.stdout.trim()} bytes, expected ${BYTES}`);
    rows.push(
      `  ${mode.padEnd(6)} backup  ${up.seconds.toFixed(2)} s  ${mbPerSecond(BYTES, up.seconds)} MB/s  peak RSS ${up.peakMb.toFixed(0)} MB`,
      `  ${mode.padEnd(6)} read    ${down.seconds.toFixed(2)} s  ${mbPerSecond(BYTES, down.seconds)} MB/s  peak RSS ${down.peakMb.toFixed(0)} MB`,
    );
    // The memstore OSD holds everything in RAM: empty the bucket between modes.
    await measure(`${awsCli()} --endpoint-url ${rgw.endpoint} s3 rm --recursive --quiet s3://bench/`, env);
  }
  console.log(`bench/encryption: ${(BYTES / 2 ** 30).toFixed(2)} GiB generated stream ↔ radosgw`);
  for (const row of rows) console.log(row);
} finally {
  await rgw.stop();
}
