/**
 * bench/pg: a ≥ 600 MB database of random text, backed up and restored in the same run against the same radosgw by
 * capsule and by the pipeline a user would write by hand:
 *   backup:  capsule pg --create            vs  pg_dump -Fc | aws s3 cp - s3://…
 *   restore: capsule pg --restore --to-database  vs  aws s3 cp s3://… - | pg_restore -d …
 * Prints times, their ratios, bytes stored by each, and capsule's peak RSS. Goals (issue 3): backup ≥ 3× faster,
 * stored size ≤ 1.10× of the peer's, peak RSS < 200 MB; restore no slower. Figures only, no pass/fail.
 *   npx tsx bench/pg.ts [target-MB]
 */
import { startPostgres } from "../test/harness/postgres.js";
import { startRadosgw } from "../test/harness/radosgw.js";
import { createBucket, s3Env } from "../test/harness/s3.js";
import { buildForBench, installedCli } from "./lib/build.js";
import { awsCli, measure } from "./lib/measure.js";
import { createBenchDatabase } from "./lib/pg-bench-db.js";

const TARGET_MB = Number(process.argv[2] ?? 620);

const build = buildForBench();
const [pg, rgw] = await Promise.all([startPostgres(), startRadosgw()]);
try {
  await createBucket(rgw, "bench");
  const env = {
    ...process.env,
    ...s3Env(rgw),
    PGHOST: pg.host,
    PGPORT: String(pg.port),
    PGUSER: pg.user,
    PGPASSWORD: pg.password,
    CAPSULE_BUCKET: "s3://bench/capsule",
  };
  const psql = (db: string, sql: string) =>
    measure(`psql -X -q -At -v ON_ERROR_STOP=1 -d ${db} -c "${sql}"`, env);
  const aws = `${awsCli()} --endpoint-url ${rgw.endpoint}`;
  const capsule = installedCli(build);

  const { rows, sizeBytes: size } = await createBenchDatabase(psql, TARGET_MB);
  console.log(
    `bench/pg: database of ${(size / 1e6).toFixed(0)} MB (${rows} rows of random text), PostgreSQL ${pg.version}`,
  );

  const capsuleBackup = await measure(
    `$TIME ${capsule} pg --create --database bench --cluster bench -o json > /tmp/capsule-bench-pg.json`,
    env,
  );
  const statefile = JSON.parse((await measure("cat /tmp/capsule-bench-pg.json", env)).stdout) as {
    backupId: string;
    artifact: { sizeBytes: number };
  };
  const peerBackup = await measure(
    `PGDATABASE=bench pg_dump -Fc | $TIME ${aws} s3 cp - s3://bench/peer/bench.dump`,
    env,
  );
  const peerBytes = Number(
    (
      await measure(
        `${aws} s3api head-object --bucket bench --key peer/bench.dump --query ContentLength`,
        env,
      )
    ).stdout.trim(),
  );

  const capsuleRestore = await measure(
    `$TIME ${capsule} pg --restore --yes --id ${statefile.backupId} --cluster bench --database bench --to-database restored_capsule`,
    env,
  );
  await psql("postgres", "CREATE DATABASE restored_peer");
  const peerRestore = await measure(
    `${aws} s3 cp s3://bench/peer/bench.dump - | pg_restore --exit-on-error -d restored_peer`,
    env,
  );

  const row = (label: string, seconds: number, extra: string) =>
    console.log(`  ${label.padEnd(44)} ${seconds.toFixed(2).padStart(7)} s  ${extra}`);
  console.log("backup");
  row(
    "capsule pg --create (pg_dump -Z0 | zstd -T0)",
    capsuleBackup.seconds,
    `${(statefile.artifact.sizeBytes / 1e6).toFixed(0)} MB stored, peak RSS ${capsuleBackup.peakMb.toFixed(0)} MB`,
  );
  row("pg_dump -Fc | aws s3 cp -", peerBackup.seconds, `${(peerBytes / 1e6).toFixed(0)} MB stored`);
  console.log(
    `  speed-up ${(peerBackup.seconds / capsuleBackup.seconds).toFixed(2)}× (goal ≥ 3)   size ratio ${(statefile.artifact.sizeBytes / peerBytes).toFixed(2)} (goal ≤ 1.10)`,
  );
  console.log("restore");
  row(
    "capsule pg --restore --to-database (verified)",
    capsuleRestore.seconds,
    `peak RSS ${capsuleRestore.peakMb.toFixed(0)} MB`,
  );
  row("aws s3 cp - | pg_restore", peerRestore.seconds, "");
  console.log(`  ratio ${(peerRestore.seconds / capsuleRestore.seconds).toFixed(2)}× (goal ≥ 1: no slower)`);
} finally {
  await Promise.all([pg.stop(), rgw.stop()]);
}
