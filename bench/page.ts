/**
 * bench/page: how long the status page takes to show a bucket of N statefiles (issue 10). Fills a local-directory
 * bucket (2 clusters × 3 targets, one run a minute), starts a status-only daemon on it, and times in Debian's
 * chromium the first load of `/` until every target is drawn, then a reload (warm statefile cache). Figures only.
 *   npx tsx bench/page.ts [statefiles]
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { Daemon } from "../src/daemon/daemon.js";
import { createLogger } from "../src/log.js";
import { BackupStore } from "../src/storage/backup-store.js";
import { layout } from "../src/storage/layout.js";
import { openBucket } from "../src/storage/open-store.js";
import { serializeStatefile } from "../src/storage/statefile.js";
import { statefile } from "../test/support/entries.js";

const COUNT = Number(process.argv[2] ?? 3_000);
const CLUSTERS = ["cnvrg.app", "other.team"];
const TARGETS = [
  ["postgresql", "postgresql"],
  ["redis", "redis"],
  ["elasticsearch", "elasticsearch"],
] as const;
const BASE_TIME = Date.parse("2026-01-01T00:00:00.000Z");

const dir = await mkdtemp(join(tmpdir(), "bench-page-"));
let daemon: Daemon | undefined;
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
try {
  const { store: objects, prefix } = openBucket(`file://${dir}`, {});
  for (let i = 0; i < COUNT; i++) {
    const [target, engine] = TARGETS[i % TARGETS.length]!;
    const s = statefile({
      cluster: CLUSTERS[Math.floor(i / TARGETS.length) % CLUSTERS.length]!,
      target,
      engine,
      status: i % 17 === 0 ? "failed" : "succeeded",
      at: new Date(BASE_TIME + i * 60_000).toISOString(),
    });
    await objects.put(layout.statefileKey(prefix, s), serializeStatefile(s));
  }
  daemon = new Daemon({
    statusOnly: true,
    store: new BackupStore(objects, prefix),
    listen: { host: "127.0.0.1", port: 0 },
    lease: { name: "", namespace: "" },
    identity: "bench",
    processMetrics: false,
    log: createLogger({ write: () => undefined }),
  });
  const { port } = await daemon.start();
  const page = await browser.newPage();
  const drawn = () =>
    page
      .locator("article.target")
      .nth(CLUSTERS.length * TARGETS.length - 1)
      .waitFor();
  let t0 = performance.now();
  await page.goto(`http://127.0.0.1:${port}/`);
  await drawn();
  const cold = performance.now() - t0;
  t0 = performance.now();
  await page.reload();
  await drawn();
  const warm = performance.now() - t0;
  const rows = await page.locator("tbody tr").count();
  const points = await page.locator("circle.point").count();
  console.log(
    `statefiles ${COUNT}: page drawn cold ${cold.toFixed(0)} ms, warm ${warm.toFixed(0)} ms ` +
      `(${rows} table rows, ${points} chart points)`,
  );
} finally {
  await browser.close();
  await daemon?.stop();
  await rm(dir, { recursive: true, force: true });
}
