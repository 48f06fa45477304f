/**
 * bench/pipeline: what capsule's own backup pipeline costs over the raw limit (issue 20). A ~600 MB table is backed
 * up, in alternating rounds against the same servers, by
 *   capsule pg --create --bucket s3://…    vs  pg_dump -Fc -Z0 | zstd -3 -T0 | aws s3 cp - s3://…
 *   capsule pg --create --bucket file://…  vs  pg_dump -Fc -Z0 | zstd -3 -T0 > file; sync -f file
 * (the raw pipes use capsule's own zstd settings, so both do the same work), and optionally by an older capsule
 * (`--before REV`, built from that commit) for a before/after in the same run. Prints every run, the medians, the
 * ratios to the raw pipe, bytes stored and capsule's peak RSS. Goal (issue 20): within 1.15× of the raw pipe, peak
 * RSS < 150 MB. Figures only, no pass/fail.
 *
 *   npx tsx bench/pipeline.ts [--mb 600] [--rounds 3] [--before REV]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startPostgres } from "../test/harness/postgres.js";
import { startRadosgw } from "../test/harness/radosgw.js";
import { createBucket, s3Env } from "../test/harness/s3.js";
import { buildForBench, buildRevision, installedCli, removeRevision } from "./lib/build.js";
import { awsCli, measure } from "./lib/measure.js";
import { createBenchDatabase } from "./lib/pg-bench-db.js";

const { values } = parseArgs({
  options: {
    mb: { type: "string", default: "600" },
    rounds: { type: "string", default: "3" },
    before: { type: "string" },
  },
});
const TARGET_MB = Number(values.mb);
const ROUNDS = Number(values.rounds);

const build = buildForBench();
const before = values.before ? buildRevision(values.before) : undefined;
const [pg, rgw] = await Promise.all([startPostgres(), startRadosgw()]);
const fileRoot = mkdtempSync(join(tmpdir(), "capsule-bench-pipeline-"));
try {
  await createBucket(rgw, "bench");
  const env = {
    ...process.env,
    ...s3Env(rgw),
    PGHOST: pg.host,
    PGPORT: String(pg.port),
    PGUSER: pg.user,
    PGPASSWORD: pg.password,
    PGDATABASE: "bench",
  };
  const psql = (db: string, sql: string) =>
    measure(`psql -X -q -At -v ON_ERROR_STOP=1 -d ${db} -c "${sql}"`, env);
  const aws = `${awsCli()} --endpoint-url ${rgw.endpoint}`;

  const { sizeBytes: size } = await createBenchDatabase(psql, TARGET_MB);
  console.log(
    `bench/pipeline: database of ${(size / 1e6).toFixed(0)} MB, PostgreSQL ${pg.version}, node ${process.version}, ${ROUNDS} rounds`,
  );

  const zstd = "zstd -3 -T0 -q -c --no-progress";
  const capsule = (dir: string, bucket: string) =>
    `$TIME ${installedCli(dir)} pg --create --cluster bench --bucket ${bucket} -o json | ` +
    `node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).artifact.sizeBytes))'`;
  const contenders: Array<{ label: string; script: (round: number) => string }> = [
    { label: "capsule → s3", script: () => capsule(build, "s3://bench/capsule") },
    {
      label: "raw pipe → s3",
      script: (r) =>
        `pg_dump -Fc -Z0 | ${zstd} | ${aws} s3 cp - s3://bench/raw/${r}.dump && ` +
        `${aws} s3api head-object --bucket bench --key raw/${r}.dump --query ContentLength`,
    },
    { label: "capsule → file", script: () => capsule(build, `file://${fileRoot}/capsule`) },
    {
      label: "raw pipe → file",
      script: (r) =>
        `mkdir -p ${fileRoot}/raw && pg_dump -Fc -Z0 | ${zstd} > ${fileRoot}/raw/${r}.dump && ` +
        `sync -f ${fileRoot}/raw/${r}.dump && stat -c %s ${fileRoot}/raw/${r}.dump`,
    },
    ...(before
      ? [
          { label: `capsule ${values.before} → s3`, script: () => capsule(before, "s3://bench/before") },
          {
            label: `capsule ${values.before} → file`,
            script: () => capsule(before, `file://${fileRoot}/before`),
          },
        ]
      : []),
  ];

  const runs = new Map(
    contenders.map((c) => [c.label, [] as Array<{ s: number; mb: number; bytes: number }>]),
  );
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of contenders) {
      const m = await measure(c.script(round), env);
      runs
        .get(c.label)!
        .push({ s: m.seconds, mb: m.peakMb, bytes: Number(m.stdout.trim().split("\n").at(-1)) });
      console.log(`  round ${round + 1}  ${c.label.padEnd(28)} ${m.seconds.toFixed(2).padStart(6)} s`);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const med = (label: string) => median(runs.get(label)!.map((r) => r.s));
  console.log("medians");
  for (const c of contenders) {
    const r = runs.get(c.label)!;
    const store = c.label.endsWith("s3") ? "s3" : "file";
    const ratio = med(c.label) / med(`raw pipe → ${store}`);
    const rss = c.label.startsWith("capsule")
      ? `, peak RSS ${Math.max(...r.map((x) => x.mb)).toFixed(0)} MB`
      : "";
    console.log(
      `  ${c.label.padEnd(28)} ${med(c.label).toFixed(2).padStart(6)} s  ${ratio.toFixed(2)}× the raw pipe  ` +
        `${(r[0]!.bytes / 1e6).toFixed(1)} MB stored${rss}`,
    );
  }
} finally {
  rmSync(fileRoot, { recursive: true, force: true });
  await Promise.all([pg.stop(), rgw.stop()]);
  if (before) removeRevision();
}
