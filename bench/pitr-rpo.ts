/**
 * bench/pitr-rpo: the recovery point of `--stream-wal` under a steady write load (issue #19; goal: RPO ≤ 15 s worst
 * case). A throwaway PostgreSQL takes COMMITS_PER_SECOND single-row commits for SECONDS; the streamer (the same
 * code `capsule pg --stream-wal` runs, in this process so the bytes it PUTs can be counted) streams into a throwaway
 * radosgw with the default 10 s upload interval. For each commit: seconds from its COMMIT returning to the head's
 * archivedAt of the first head whose archivedLsn covers the commit's LSN (head.json polled every 100 ms). Prints
 * median, p95 and worst, and the bytes PUT to the bucket against the WAL the server generated. Figures only:
 *
 *   npx tsx bench/pitr-rpo.ts [seconds=60] [commits-per-second=10] [upload-interval=10s]
 */
import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { parseLsn, type Lsn } from "../src/domain/wal.js";
import { withClient } from "../src/engines/postgres/sql.js";
import { walStreamSettings } from "../src/engines/postgres/stream-wal.js";
import { streamWal } from "../src/engines/postgres/wal-streamer.js";
import { openBucket } from "../src/storage/open-store.js";
import type { ObjectStore } from "../src/storage/object-store.js";
import { WalArchive } from "../src/storage/wal-archive.js";
import { startPostgres } from "../test/harness/postgres.js";
import { startRadosgw } from "../test/harness/radosgw.js";
import { createBucket, s3Env } from "../test/harness/s3.js";

const SECONDS = Number(process.argv[2] ?? 60);
const RATE = Number(process.argv[3] ?? 10);
const INTERVAL = process.argv[4] ?? "10s";

/** Counts the bytes every PUT carries: what streaming costs in upload traffic. */
function counting(store: ObjectStore): { store: ObjectStore; bytes: () => number; puts: () => number } {
  let bytes = 0;
  let puts = 0;
  const counted: ObjectStore = Object.create(store) as ObjectStore;
  counted.put = (key, body, options) => {
    puts++;
    if (typeof body === "string") bytes += Buffer.byteLength(body);
    else if (!(body instanceof Readable)) bytes += body.length;
    return store.put(key, body, options);
  };
  return { store: counted, bytes: () => bytes, puts: () => puts };
}

const [pg, rgw] = await Promise.all([startPostgres(), startRadosgw()]);
try {
  await createBucket(rgw, "pitr");
  const env = { ...process.env, ...s3Env(rgw) };
  const { store, prefix } = openBucket("s3://pitr/capsule", {}, env);
  const meter = counting(store);
  const archive = new WalArchive(meter.store, prefix, "bench", "shop");
  const conn = { host: pg.host, port: pg.port, user: pg.user, password: pg.password, database: "postgres" };
  const lsnNow = async (): Promise<Lsn> =>
    withClient(conn, "postgres", async (c) =>
      parseLsn((await c.query<{ l: string }>("SELECT pg_current_wal_lsn()::text AS l")).rows[0]!.l),
    );
  await withClient(conn, "postgres", (c) =>
    c.query("CREATE TABLE orders (id serial PRIMARY KEY, body text)"),
  );

  const abort = new AbortController();
  const settings = walStreamSettings({ walUploadInterval: INTERVAL }, "shop");
  const streaming = streamWal(conn, archive, {
    ...settings,
    signal: abort.signal,
    report: { info: () => undefined, warn: (m, f) => console.error(`warn: ${m} ${JSON.stringify(f)}`) },
  });
  while (!(await archive.readHead())) await sleep(100);
  const walStart = await lsnNow();
  const putsBefore = meter.bytes();

  const commits: Array<{ lsn: Lsn; at: number; durableAt?: number }> = [];
  let polling = true;
  const poller = (async () => {
    while (polling || commits.some((c) => c.durableAt === undefined)) {
      const head = await archive.readHead().catch(() => undefined);
      if (head) {
        const archived = parseLsn(head.archivedLsn);
        const at = Date.parse(head.archivedAt);
        for (const c of commits) if (c.durableAt === undefined && c.lsn <= archived) c.durableAt = at;
      }
      await sleep(100);
    }
  })();

  await withClient(conn, "postgres", async (c) => {
    const started = Date.now();
    for (let i = 0; i < SECONDS * RATE; i++) {
      const due = started + (i * 1000) / RATE;
      if (due > Date.now()) await sleep(due - Date.now());
      await c.query("INSERT INTO orders (body) VALUES (repeat(md5(random()::text), 4))");
      const at = Date.now();
      const lsn = parseLsn(
        (await c.query<{ l: string }>("SELECT pg_current_wal_lsn()::text AS l")).rows[0]!.l,
      );
      commits.push({ lsn, at });
    }
  });
  const walEnd = await lsnNow();
  polling = false;
  await poller;
  abort.abort();
  const summary = await streaming;

  const rpo = commits.map((c) => (c.durableAt! - c.at) / 1000).sort((a, b) => a - b);
  const pct = (p: number) => rpo[Math.min(rpo.length - 1, Math.floor(p * rpo.length))]!.toFixed(2);
  const walBytes = Number(walEnd - walStart);
  const uploaded = meter.bytes() - putsBefore;
  console.log(
    `pitr-rpo: ${commits.length} commits over ${SECONDS} s (${RATE}/s), upload interval ${INTERVAL}`,
  );
  console.log(
    `  commit → durable in the bucket: median ${pct(0.5)} s, p95 ${pct(0.95)} s, worst ${rpo.at(-1)!.toFixed(2)} s`,
  );
  console.log(
    `  WAL generated ${(walBytes / 1024 / 1024).toFixed(2)} MiB; PUT to the bucket ${(uploaded / 1024 / 1024).toFixed(2)} MiB ` +
      `in ${meter.puts()} requests (${(uploaded / walBytes).toFixed(2)}× the WAL; partials are whole zero-padded segments, zstd-compressed)`,
  );
  console.log(
    `  streamer: ${summary.segments} complete segments, ${summary.partials} partial uploads, archived to ${summary.archivedLsn}`,
  );
} finally {
  await Promise.allSettled([pg.stop(), rgw.stop()]);
}
