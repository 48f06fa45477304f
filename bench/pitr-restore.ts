/**
 * bench/pitr-restore: the bench database (bench/lib/pg-bench-db.ts) backed up and restored physically and logically
 * in the same run, against the same radosgw (#19):
 *   base backup:  capsule pg --create --physical  vs  pg_basebackup -D localdir -Ft (no upload at all)
 *   restore:      capsule pg --restore --physical --to-data-dir (base backup + WAL replay)
 *                 vs  capsule pg --create, then capsule pg --restore --to-database (the logical path)
 * The WAL after the base backup (an UPDATE of a tenth of the rows) is put into the bucket by the tests' stand-in
 * streamer (test/support/wal-shipper.ts), so the physical restore replays real WAL. Goal: the physical restore is
 * faster than the logical one. Figures only, no pass/fail.
 * The two restores alternate for --rounds rounds (the machine's load then weighs on both alike); the medians compare.
 * `--before REV` adds the physical restores of an older capsule (built from that commit) to the same rounds.
 *   npx tsx bench/pitr-restore.ts [--mb 620] [--indexes 0..4] [--rounds 3] [--before REV]
 */
import { chmod, chown, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { openBackupStore } from "../src/runtime/bucket.js";
import { startPostgres } from "../test/harness/postgres.js";
import { lookupUser } from "../test/harness/process.js";
import { startRadosgw } from "../test/harness/radosgw.js";
import { createBucket, s3Env } from "../test/harness/s3.js";
import { shipWal } from "../test/support/wal-shipper.js";
import { buildForBench, buildRevision, installedCli, removeRevision } from "./lib/build.js";
import { type Measured, measure } from "./lib/measure.js";
import { createBenchDatabase } from "./lib/pg-bench-db.js";

const mbFlag = process.argv.indexOf("--mb");
const TARGET_MB = Number(mbFlag >= 0 ? process.argv[mbFlag + 1] : 620);
// Secondary indexes on the bench table: a logical restore rebuilds each one, a physical restore copies them. The
// platform's metadata tables carry a few each; 0 is the bench database as the other benches use it.
const indexFlag = process.argv.indexOf("--indexes");
const INDEXES = Number(indexFlag >= 0 ? process.argv[indexFlag + 1] : 0);
const roundsFlag = process.argv.indexOf("--rounds");
const ROUNDS = Number(roundsFlag >= 0 ? process.argv[roundsFlag + 1] : 3);
const beforeFlag = process.argv.indexOf("--before");
const BEFORE = beforeFlag >= 0 ? process.argv[beforeFlag + 1] : undefined;
const INDEX_KEYS = ["(md5(body))", "(length(body))", "(substr(body, 1, 8))", "id, length(body)"];

const build = buildForBench();
const before = BEFORE ? buildRevision(BEFORE) : undefined;
const work = await mkdtemp(path.join(tmpdir(), "capsule-bench-pitr-"));
await chmod(work, 0o777);
const archiveDir = path.join(work, "archive");
await measure(`mkdir ${archiveDir} && chmod 777 ${archiveDir}`);
const account = process.getuid?.() === 0 ? lookupUser("postgres") : undefined;
if (account) await chown(archiveDir, account.uid, account.gid);
// The tests' server runs with fsync, synchronous_commit and full_page_writes off; a production one has them on. A
// logical restore into the tests' server never makes its writes durable while the physical one syncs what it
// restored (initdb --sync-only), so both sides run against production settings here.
const DURABLE = { fsync: "on", synchronous_commit: "on", full_page_writes: "on" };
// The logical restores go to a server of their own: into the source they would write WAL of their own, which the
// point-in-time restore would then have to replay.
const [pg, logicalTarget, rgw] = await Promise.all([
  startPostgres({ archiveWalTo: archiveDir, settings: DURABLE }),
  startPostgres({ settings: DURABLE }),
  startRadosgw(),
]);
try {
  await createBucket(rgw, "bench");
  const env = {
    ...process.env,
    ...s3Env(rgw),
    PGHOST: pg.host,
    PGPORT: String(pg.port),
    PGUSER: pg.user,
    PGPASSWORD: pg.password,
    PGDATABASE: "postgres",
    CAPSULE_BUCKET: "s3://bench/capsule",
  };
  const targetEnv = {
    ...env,
    PGHOST: logicalTarget.host,
    PGPORT: String(logicalTarget.port),
    PGUSER: logicalTarget.user,
    PGPASSWORD: logicalTarget.password,
  };
  const psql = (db: string, sql: string) =>
    measure(`psql -X -q -At -v ON_ERROR_STOP=1 -d ${db} -c "${sql}"`, env);
  const capsule = installedCli(build);

  const { rows } = await createBenchDatabase(psql, TARGET_MB);
  for (const key of INDEX_KEYS.slice(0, INDEXES)) await psql("bench", `CREATE INDEX ON notes (${key})`);
  const size = Number((await psql("bench", "SELECT pg_database_size('bench')")).stdout.trim());
  console.log(
    `bench/pitr-restore: database of ${(size / 1e6).toFixed(0)} MB (${rows} rows, ${INDEXES} secondary indexes), PostgreSQL ${pg.version}, fsync and full_page_writes on`,
  );

  const physicalBackup = await measure(
    `$TIME ${capsule} pg --create --physical --cluster bench --target bench -o json > ${work}/physical.json`,
    env,
  );
  const peerBackup = await measure(`pg_basebackup -D ${work}/peer-basebackup -Ft -c fast --no-password`, env);
  const stored = JSON.parse((await measure(`cat ${work}/physical.json`)).stdout) as {
    backupId: string;
    artifact: { sizeBytes: number };
  };

  const store = openBackupStore({ bucket: "s3://bench/capsule" }, env);
  const ship = () =>
    shipWal(
      { host: pg.host, port: pg.port, user: pg.user, password: pg.password, database: "postgres" },
      archiveDir,
      store.walArchive("bench", "bench"),
    );
  const physicalRestoreTo = (dir: string, cli = capsule) =>
    measure(
      `$TIME ${cli} pg --restore --physical --cluster bench --target bench --to-data-dir ${work}/${dir}`,
      env,
    ).finally(() => rm(`${work}/${dir}`, { recursive: true, force: true }));
  const median = (runs: Measured[]) =>
    [...runs].sort((a, b) => a.seconds - b.seconds)[(runs.length - 1) >> 1]!;
  const each = (runs: Measured[]) => runs.map((r) => r.seconds.toFixed(2)).join(" / ");

  // Like for like: the same state restored both ways. The physical side replays only the WAL its base backup needs;
  // the logical dump is taken with no write in between.
  const baseWal = await ship();
  const logicalBackup = await measure(
    `${capsule} pg --create --database bench --cluster bench --target bench-logical -o json > ${work}/logical.json`,
    env,
  );
  const logicalId = (JSON.parse((await measure(`cat ${work}/logical.json`)).stdout) as { backupId: string })
    .backupId;
  const beforeCli = before && installedCli(before);
  const physicalRestores: Measured[] = [];
  const beforeRestores: Measured[] = [];
  const logicalRestores: Measured[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    physicalRestores.push(await physicalRestoreTo(`restored-${round}`));
    if (beforeCli) beforeRestores.push(await physicalRestoreTo(`before-${round}`, beforeCli));
    logicalRestores.push(
      await measure(
        `$TIME ${capsule} pg --restore --yes --id ${logicalId} --cluster bench --database postgres --to-database restored_logical_${round}`,
        targetEnv,
      ),
    );
    await measure(`psql -X -q -d postgres -c "DROP DATABASE restored_logical_${round}"`, targetEnv);
  }

  // Point in time: a tenth of the rows rewritten after the base backup (every page touched, so with full-page writes
  // the WAL outweighs the table), and the restore replays it all.
  await psql("bench", "UPDATE notes SET body = upper(body) WHERE id % 10 = 0");
  const updateWal = await ship();
  const replayRestores: Measured[] = [];
  const beforeReplays: Measured[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    replayRestores.push(await physicalRestoreTo(`replayed-${round}`));
    if (beforeCli) beforeReplays.push(await physicalRestoreTo(`before-replayed-${round}`, beforeCli));
  }

  const physicalRestore = median(physicalRestores);
  const logicalRestore = median(logicalRestores);
  const replayRestore = median(replayRestores);
  const row = (label: string, seconds: number, extra = "") =>
    console.log(`  ${label.padEnd(58)} ${seconds.toFixed(2).padStart(7)} s  ${extra}`);
  console.log("base backup");
  row(
    "capsule pg --create --physical (to radosgw, zstd)",
    physicalBackup.seconds,
    `${(stored.artifact.sizeBytes / 1e6).toFixed(0)} MB stored, peak RSS ${physicalBackup.peakMb.toFixed(0)} MB`,
  );
  row("pg_basebackup -D localdir -Ft (local disk, uncompressed)", peerBackup.seconds);
  console.log(`  ratio capsule / pg_basebackup ${(physicalBackup.seconds / peerBackup.seconds).toFixed(2)}×`);
  console.log(`restore of the same state (median of ${ROUNDS} alternating rounds; each round in brackets)`);
  row(
    `capsule pg --restore --physical (WAL in the bucket: ${baseWal.segments} segments)`,
    physicalRestore.seconds,
    `[${each(physicalRestores)}] peak RSS ${physicalRestore.peakMb.toFixed(0)} MB`,
  );
  if (beforeCli)
    row(
      `capsule ${BEFORE} pg --restore --physical`,
      median(beforeRestores).seconds,
      `[${each(beforeRestores)}] peak RSS ${median(beforeRestores).peakMb.toFixed(0)} MB`,
    );
  row("capsule pg --create (logical, for the logical restore)", logicalBackup.seconds);
  row(
    "capsule pg --restore --to-database (logical)",
    logicalRestore.seconds,
    `[${each(logicalRestores)}] peak RSS ${logicalRestore.peakMb.toFixed(0)} MB`,
  );
  console.log(
    `  physical restore is ${(logicalRestore.seconds / physicalRestore.seconds).toFixed(2)}× as fast as the logical one (goal > 1)`,
  );
  // shipWal ships every archived segment each time: its count is the total.
  const replayed = (updateWal.segments - baseWal.segments) * 16;
  const extra = replayRestore.seconds - physicalRestore.seconds;
  console.log(`point-in-time restore after an UPDATE of a tenth of the rows (median of ${ROUNDS})`);
  row(
    `capsule pg --restore --physical (WAL in the bucket: ${updateWal.segments} segments)`,
    replayRestore.seconds,
    `[${each(replayRestores)}] ${replayed} MiB more WAL: +${extra.toFixed(2)} s, ${(replayed / extra).toFixed(0)} MiB/s`,
  );
  if (beforeCli) {
    const beforeReplay = median(beforeReplays);
    const beforeExtra = beforeReplay.seconds - median(beforeRestores).seconds;
    row(
      `capsule ${BEFORE} pg --restore --physical`,
      beforeReplay.seconds,
      `[${each(beforeReplays)}] +${beforeExtra.toFixed(2)} s, ${(replayed / beforeExtra).toFixed(0)} MiB/s`,
    );
  }
} finally {
  if (before) removeRevision();
  await Promise.all([pg.stop(), logicalTarget.stop(), rgw.stop()]);
  await rm(work, { recursive: true, force: true });
}
