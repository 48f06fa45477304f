/**
 * bench/es: export and import through the wire-level fake (test/fakes/elasticsearch.ts, run as a separate process
 * so its memory is not counted), into a local-directory store, with `capsule es --create/--restore` as processes. This measures capsule's own overhead — paging, raw
 * JSON handling, gzip, hashing, bulk batching — not a real cluster's indexing speed.
 *
 *   npx tsx bench/es.ts [documents=500000]
 *
 * Goals (issue 7): ≥ 20k docs/s each way, peak RSS < 200 MB (capsule's own process, compiled JavaScript).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { buildForBench, installedCli } from "./lib/build.js";
import { measure } from "./lib/measure.js";

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

const build = buildForBench();
const capsule = installedCli(build);
const dir = mkdtempSync(join(tmpdir(), "capsule-bench-es-"));
const bucket = `file://${dir}`;
const source = await startFake(DOCS);
const target = await startFake(0);
try {
  // capsule runs as the shipped JavaScript in its own process: the figures are its own, start-up included.
  const exported = await measure(
    `$TIME ${capsule} es --create --url ${source.url} --bucket ${bucket} --cluster bench -o json`,
  );
  const statefile = JSON.parse(exported.stdout) as { backupId: string; artifact?: { sizeBytes: number } };
  const imported = await measure(
    `$TIME ${capsule} es --restore --yes --id ${statefile.backupId} --url ${target.url} --bucket ${bucket} --cluster bench`,
  );

  const size = statefile.artifact?.sizeBytes ?? 0;
  console.log(`documents            ${DOCS}`);
  console.log(`artifact             ${(size / 1e6).toFixed(1)} MB gzip (${(size / DOCS).toFixed(0)} B/doc)`);
  console.log(
    `export               ${exported.seconds.toFixed(2)} s  ${Math.round(DOCS / exported.seconds)} docs/s  peak RSS ${exported.peakMb.toFixed(0)} MB`,
  );
  console.log(
    `import               ${imported.seconds.toFixed(2)} s  ${Math.round(DOCS / imported.seconds)} docs/s  peak RSS ${imported.peakMb.toFixed(0)} MB (incl. sha256 pre-check)`,
  );
  console.log(`goals                ≥ 20000 docs/s each way, < 200 MB`);
} finally {
  source.child.kill("SIGTERM");
  target.child.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
}
