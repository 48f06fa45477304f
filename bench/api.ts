/**
 * bench/api: GET /api/v1/clusters/{c}/backups over N statefiles of one cluster in radosgw (issue 5, Benchmark).
 * Writes the statefiles through the BackupStore's object store with bounded parallelism, starts a status-only
 * daemon on them (as test/integration/status.test.ts does), then times the first call and a few warm ones.
 * Figures only: no pass/fail on timing. All asynchronous: the harness' radosgw logs through pipes that must keep
 * draining.
 *   npx tsx bench/api.ts [statefiles]
 */
import { Daemon } from "../src/daemon/daemon.js";
import { createLogger } from "../src/log.js";
import { BackupStore } from "../src/storage/backup-store.js";
import { layout } from "../src/storage/layout.js";
import { openBucket } from "../src/storage/open-store.js";
import { serializeStatefile } from "../src/storage/statefile.js";
import { startRadosgw } from "../test/harness/radosgw.js";
import { createBucket, s3Env } from "../test/harness/s3.js";
import { statefile } from "../test/support/entries.js";

const COUNT = Number(process.argv[2] ?? 10_000);
const PARALLEL = 64;
const WARM_CALLS = 5;
const CLUSTER = "cnvrg.app";
const ENGINES = ["postgresql", "redis", "elasticsearch"] as const;
const BASE_TIME = Date.parse("2025-01-01T00:00:00.000Z");

const rgw = await startRadosgw();
let daemon: Daemon | undefined;
try {
  await createBucket(rgw, "bench-api");
  const { store: objects, prefix } = openBucket("s3://bench-api/capsule", {}, s3Env(rgw));
  const store = new BackupStore(objects, prefix);

  const writeStarted = performance.now();
  let next = 0;
  const writer = async () => {
    for (let i = next++; i < COUNT; i = next++) {
      const engine = ENGINES[i % ENGINES.length]!;
      const entry = statefile({
        cluster: CLUSTER,
        target: engine,
        engine,
        at: new Date(BASE_TIME + i * 60_000).toISOString(),
      });
      await objects.put(layout.statefileKey(prefix, entry), serializeStatefile(entry));
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, writer));
  const writeSeconds = (performance.now() - writeStarted) / 1000;

  daemon = new Daemon({
    statusOnly: true,
    store,
    listen: { host: "127.0.0.1", port: 0 },
    allowRequests: false,
    lease: { name: "", namespace: "" },
    identity: "bench",
    processMetrics: false,
    log: createLogger({ write: () => undefined }),
  });
  const { port } = await daemon.start();
  const url = `http://127.0.0.1:${port}/api/v1/clusters/${CLUSTER}/backups`;

  const call = async () => {
    const started = performance.now();
    const res = await fetch(url);
    const body = await res.text();
    const ms = performance.now() - started;
    if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${body.slice(0, 200)}`);
    const parsed = JSON.parse(body) as { items: unknown[]; total: number };
    const items = `${parsed.items.length} items of ${parsed.total}`;
    return { ms, bytes: Buffer.byteLength(body), items };
  };
  // The daemon's bucket monitor reads every statefile once at start (for /metrics), which also warms the store's
  // statefile cache; time that cold read, then the API calls.
  const warmStarted = performance.now();
  for (;;) {
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    if (/capsule_backup_last_success_timestamp_seconds\{/.test(metrics)) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const coldSeconds = (performance.now() - warmStarted) / 1000;
  const first = await call();
  const warm = [];
  for (let i = 0; i < WARM_CALLS; i++) warm.push(await call());
  const sorted = warm.map((w) => w.ms).sort((a, b) => a - b);

  console.log(`bench/api: ${COUNT} statefiles of one cluster in radosgw`);
  console.log(
    `  write (${PARALLEL} in flight)      ${writeSeconds.toFixed(1)} s  ${(COUNT / writeSeconds).toFixed(0)} statefiles/s`,
  );
  console.log(`  cold read of every statefile (monitor start-up)  ${coldSeconds.toFixed(1)} s`);
  console.log(
    `  GET …/backups first call   ${first.ms.toFixed(0)} ms  ${(first.bytes / 1024).toFixed(0)} KiB  ${first.items}`,
  );
  console.log(
    `  GET …/backups warm (${WARM_CALLS})     min ${sorted[0]!.toFixed(0)} ms  median ${sorted[Math.floor(WARM_CALLS / 2)]!.toFixed(0)} ms  max ${sorted[WARM_CALLS - 1]!.toFixed(0)} ms`,
  );
} finally {
  await daemon?.stop();
  await rgw.stop();
}
