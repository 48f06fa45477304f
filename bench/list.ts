/**
 * bench/list: `capsule pg --list` from a new process over N statefiles of one cluster in radosgw (issue 20):
 * cold (no catalog), warm (catalog present), after M statefiles were added behind capsule's back (the catalog
 * repaired), and warm again; each with the process's peak RSS. Runs the CLI as an installed `capsule` runs (its
 * shebang's V8 flags apply) under /usr/bin/time. With `--before REV`, an older capsule built from that commit repairs
 * the same stale catalog and lists the same bucket warm, for a before/after in the same run. Figures only: no
 * pass/fail on timing.
 *   npx tsx bench/list.ts [statefiles] [added] [--before REV]
 */
import { execFile } from "node:child_process";
import { parseArgs, promisify } from "node:util";
import { loadavg } from "node:os";
import { layout } from "../src/storage/layout.js";
import { openBucket } from "../src/storage/open-store.js";
import { serializeStatefile } from "../src/storage/statefile.js";
import { startRadosgw } from "../test/harness/radosgw.js";
import { createBucket, s3Env } from "../test/harness/s3.js";
import { statefile } from "../test/support/entries.js";
import { buildForBench, buildRevision, installedCli, removeRevision } from "./lib/build.js";

const { values, positionals } = parseArgs({
  options: { before: { type: "string" } },
  allowPositionals: true,
});
const COUNT = Number(positionals[0] ?? 10_000);
const ADDED = Number(positionals[1] ?? 10_000);
const PARALLEL = 64;
const CLUSTER = "cnvrg.app";
const BASE_TIME = Date.parse("2025-01-01T00:00:00.000Z");
const run = promisify(execFile);
const CLI = installedCli(buildForBench());
const BEFORE = values.before ? installedCli(buildRevision(values.before)) : undefined;

const rgw = await startRadosgw();
try {
  await createBucket(rgw, "bench-list");
  const url = "s3://bench-list/capsule";
  const { store: objects, prefix } = openBucket(url, {}, s3Env(rgw));
  let written = 0;
  const write = async (count: number) => {
    const started = performance.now();
    const end = written + count;
    const writer = async () => {
      for (let i = written++; i < end; i = written++) {
        const entry = statefile({
          cluster: CLUSTER,
          target: "db",
          engine: "postgresql",
          at: new Date(BASE_TIME + i * 60_000).toISOString(),
        });
        await objects.put(layout.statefileKey(prefix, entry), serializeStatefile(entry));
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, writer));
    written = end;
    return (performance.now() - started) / 1000;
  };
  const env = { ...process.env, ...s3Env(rgw), CAPSULE_BUCKET: url, CAPSULE_CLUSTER: CLUSTER };
  /** One `--list` in a new process: wall seconds, peak RSS and how many backups it printed. */
  const list = async (args = ["pg", "--list", "--output", "json"], cli = CLI) => {
    const started = performance.now();
    const { stdout, stderr } = await run("/usr/bin/time", ["-f", "%M", cli, ...args], {
      env,
      maxBuffer: 1 << 30,
    });
    const seconds = (performance.now() - started) / 1000;
    const rssKiB = Number(stderr.trim().split("\n").at(-1));
    const backups =
      args[1] !== "--list"
        ? 0
        : args.includes("json")
          ? (JSON.parse(stdout) as unknown[]).length
          : stdout.split("\n").length - 2;
    return { seconds, rssMiB: rssKiB / 1024, backups };
  };
  const show = (what: string, r: Awaited<ReturnType<typeof list>>) =>
    console.log(
      `  ${what.padEnd(44)} ${r.seconds.toFixed(2)} s  peak RSS ${r.rssMiB.toFixed(0)} MiB  ${r.backups} backups  (load ${loadavg()[0]!.toFixed(1)})`,
    );

  console.log(`bench/list: capsule pg --list, ${COUNT} statefiles of one cluster in radosgw`);
  const writeSeconds = await write(COUNT);
  console.log(`  write ${COUNT} statefiles (${PARALLEL} in flight)     ${writeSeconds.toFixed(1)} s`);
  show("process start-up alone (capsule version)", await list(["version"]));
  show("cold (no catalog)", await list());
  show("warm (catalog present)", await list());
  show("warm again", await list());
  show("warm, printed as the table", await list(["pg", "--list"]));
  const addSeconds = await write(ADDED);
  console.log(`  add ${ADDED} statefiles behind capsule's back  ${addSeconds.toFixed(1)} s`);
  if (BEFORE) {
    // The older capsule repairs first; the stale catalog is then put back for this one to repair the same way.
    const catalogKey = layout.catalogKey(prefix, CLUSTER, "postgresql");
    const stale = await objects.getWithEtag(catalogKey);
    show(`${values.before}: repair (${ADDED} new since the catalog)`, await list(undefined, BEFORE));
    show(`${values.before}: warm after repair`, await list(undefined, BEFORE));
    await objects.put(catalogKey, stale.bytes, { contentType: "application/gzip" });
  }
  show(`repair (${ADDED} new since the catalog)`, await list());
  show("warm after repair", await list());
  if (BEFORE) show(`${values.before}: warm again`, await list(undefined, BEFORE));
} finally {
  await rgw.stop();
  if (BEFORE) removeRevision();
}
