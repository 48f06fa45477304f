/**
 * bench/es: export and import through the wire-level fake (test/fakes/elasticsearch.ts, run as a separate process
 * so its memory is not counted), into a local-directory store. This measures capsule's own overhead — paging, raw
 * JSON handling, gzip, hashing, bulk batching — not a real cluster's indexing speed.
 *
 *   npx tsx bench/es.ts [documents=500000]
 *
 * Goals (issue 7): ≥ 20k docs/s each way, peak RSS < 200 MB (this process, which runs under tsx).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { backupElasticsearch } from "../src/engines/elasticsearch/backup.js";
import { esConnectionFrom } from "../src/engines/elasticsearch/connection.js";
import { restoreElasticsearch } from "../src/engines/elasticsearch/restore.js";
import { openBackupStore } from "../src/runtime/bucket.js";
import { takeBackup } from "../src/runtime/take-backup.js";

const DOCS = Number(process.argv[2] ?? 500_000);
const ROOT = resolve(import.meta.dirname, "..");

async function startFake(docs: number): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", join(ROOT, "test/fakes/elasticsearch-server.ts"), "8", String(docs)],
    { stdio: ["ignore", "pipe", "inherit"], cwd: ROOT },
  );
  const url = await new Promise<string>((ok, fail) => {
    createInterface({ input: child.stdout }).once("line", ok);
    child.once("exit", (code) => fail(new Error(`fake exited (${code})`)));
  });
  return { url, child };
}

const baseline = process.resourceUsage().maxRSS / 1024;
const dir = mkdtempSync(join(tmpdir(), "capsule-bench-es-"));
const store = openBackupStore({ bucket: `file://${dir}` }, {});
const source = await startFake(DOCS);
const target = await startFake(0);
try {
  let t0 = performance.now();
  const statefile = await takeBackup(
    store,
    { cluster: "bench", target: "es", engine: "elasticsearch", trigger: { type: "manual" }, source: {} },
    (run, context) => backupElasticsearch(esConnectionFrom({ url: source.url }, {}), run, context),
  );
  const exportSeconds = (performance.now() - t0) / 1000;
  const rssAfterExport = process.resourceUsage().maxRSS / 1024;

  const entry = await store.get({ cluster: "bench", engine: "elasticsearch", backupId: statefile.backupId });
  t0 = performance.now();
  const outcome = await restoreElasticsearch(esConnectionFrom({ url: target.url }, {}), store, entry, {
    ...(process.env["BENCH_ES_CONCURRENCY"]
      ? { concurrency: Number(process.env["BENCH_ES_CONCURRENCY"]) }
      : {}),
    ...(process.env["BENCH_ES_BATCH_MB"]
      ? { batchBytes: Number(process.env["BENCH_ES_BATCH_MB"]) << 20 }
      : {}),
  });
  const importSeconds = (performance.now() - t0) / 1000;
  const peak = process.resourceUsage().maxRSS / 1024;

  const size = statefile.artifact?.sizeBytes ?? 0;
  console.log(`documents            ${DOCS}`);
  console.log(`artifact             ${(size / 1e6).toFixed(1)} MB gzip (${(size / DOCS).toFixed(0)} B/doc)`);
  console.log(
    `export               ${exportSeconds.toFixed(2)} s  ${Math.round(DOCS / exportSeconds)} docs/s`,
  );
  console.log(
    `import               ${importSeconds.toFixed(2)} s  ${Math.round(outcome.docs / importSeconds)} docs/s (incl. sha256 pre-check)`,
  );
  console.log(
    `peak RSS             ${rssAfterExport.toFixed(0)} MB after export, ${peak.toFixed(0)} MB overall ` +
      `(${baseline.toFixed(0)} MB before any work: node + tsx + capsule's modules)`,
  );
  console.log(`goals                ≥ 20000 docs/s each way, < 200 MB`);
} finally {
  source.child.kill("SIGTERM");
  target.child.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
}
