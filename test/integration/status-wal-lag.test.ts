/// <reference lib="dom" />
// The callbacks given to evaluate run in the browser, on DOM elements.
/**
 * WAL lag in the status API, the metrics and the page, from a real bucket (a file:// store, the same layout and
 * code as S3) whose head.json was written by `WalArchive.writeHead`, as the streamer writes it. A PostgreSQL target
 * without a head (no pitr) and one with a damaged head sit beside it.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { chromium, type Browser } from "playwright-core";
import { Daemon } from "../../src/daemon/daemon.js";
import { formatLsn, parseLsn, type WalHead } from "../../src/domain/wal.js";
import { BackupStore } from "../../src/storage/backup-store.js";
import { layout } from "../../src/storage/layout.js";
import { openBucket } from "../../src/storage/open-store.js";
import { capturedLogger, eventually } from "../fakes/kube-clients.js";

const CLUSTER = "cnvrg.app";
const TOKEN = "wal-lag-test-token-0123456789";
const CHROMIUM = "/usr/bin/chromium";
const BEHIND = 5 * 1024 * 1024 + 123;

async function backup(store: BackupStore, target: string): Promise<void> {
  const run = await store.begin({
    cluster: CLUSTER,
    target,
    engine: "postgresql",
    trigger: { type: "schedule" },
    source: { host: "db", port: 5432 },
    tool: { capsule: "test" },
  });
  const uploaded = await run.uploadArtifact("dump.bin", Readable.from([Buffer.from("x")]));
  await run.commit({ artifact: { name: "dump.bin", format: "test", compression: "none", ...uploaded } });
}

describe("status: WAL lag of pitr targets (file:// bucket)", () => {
  let dir: string;
  let daemon: Daemon;
  let base: string;
  let head: WalHead;
  let startedAt: number;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "capsule-wal-lag-"));
    const { store: objects, prefix } = openBucket(`file://${dir}/bucket/capsule`);
    const store = new BackupStore(objects, prefix);
    for (const target of ["postgresql", "plain", "broken"]) await backup(store, target);
    const archived = parseLsn("0/5000000");
    const now = Date.now();
    head = {
      version: 1,
      systemIdentifier: "7400000000000000001",
      timeline: 2,
      segmentSize: 16 * 1024 * 1024,
      slot: "capsule_postgresql",
      archivedLsn: formatLsn(archived),
      archivedAt: new Date(now - 3_000).toISOString(),
      coveredUntil: new Date(now - 7_000).toISOString(),
      serverLsn: formatLsn(archived + BigInt(BEHIND)),
      serverLsnAt: new Date(now - 2_000).toISOString(),
      updatedAt: new Date(now - 2_000).toISOString(),
    };
    await store.walArchive(CLUSTER, "postgresql").writeHead(head);
    // A head that is not JSON: reported, never hiding the other targets.
    await objects.put(layout.walHeadKey(prefix, CLUSTER, "broken"), "{not json");
    startedAt = Date.now();
    daemon = new Daemon({
      statusOnly: true,
      store,
      listen: { host: "127.0.0.1", port: 0 },
      token: TOKEN,
      lease: { name: "", namespace: "" },
      identity: "test",
      processMetrics: false,
      log: capturedLogger(),
    });
    base = `http://127.0.0.1:${(await daemon.start()).port}`;
  });
  after(async () => {
    await daemon?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const get = async (path: string) => {
    const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    return { status: res.status, text: await res.text() };
  };

  test("GIVEN a head.json WHEN /wal is read THEN lag bytes are serverLsn - archivedLsn and lag seconds count from coveredUntil", async () => {
    const { status, text } = await get(`/api/v1/clusters/${CLUSTER}/wal`);
    const askedAt = Date.now();
    assert.equal(status, 200, text);
    const body = JSON.parse(text) as { items: Array<Record<string, unknown>> };
    assert.deepEqual(
      body.items.map((i) => i["target"]),
      ["broken", "postgresql"],
      "the target without a head streams nothing and is not listed",
    );
    const [broken, lag] = body.items;
    assert.match(String(broken?.["error"]), /head\.json: not valid JSON/);
    assert.equal(lag?.["lagBytes"], BEHIND);
    assert.equal(lag?.["engine"], "postgresql", "the engine whose backups name the target");
    assert.equal(lag?.["archivedLsn"], head.archivedLsn);
    assert.equal(lag?.["serverLsn"], head.serverLsn);
    assert.equal(lag?.["timeline"], 2);
    assert.equal(lag?.["coveredUntil"], head.coveredUntil);
    const covered = Date.parse(head.coveredUntil);
    const seconds = lag?.["lagSeconds"] as number;
    assert.ok(seconds >= Math.floor((startedAt - covered) / 100) / 10, `lagSeconds ${seconds}`);
    assert.ok(seconds <= Math.ceil((askedAt - covered) / 100) / 10, `lagSeconds ${seconds}`);
    const age = lag?.["headAgeSeconds"] as number;
    assert.ok(age >= 0 && age < seconds, "the head was written after the point it covers");
  });

  test("GIVEN targets with and without a head WHEN /wal/{target} is read THEN 200 with the lag, 404 for the one without", async () => {
    const one = await get(`/api/v1/clusters/${CLUSTER}/wal/postgresql`);
    assert.equal(one.status, 200);
    assert.equal((JSON.parse(one.text) as { lagBytes: number }).lagBytes, BEHIND);
    const none = await get(`/api/v1/clusters/${CLUSTER}/wal/plain`);
    assert.equal(none.status, 404);
    assert.match(none.text, /target plain of cluster cnvrg\.app streams no WAL/);
    assert.equal((await get(`/api/v1/clusters/${CLUSTER}/wal/Bad%20Name`)).status, 400);
    assert.equal((await get(`/api/v1/clusters/${CLUSTER}/wal/postgresql/x`)).status, 404);
  });

  test("GIVEN the monitor's refresh WHEN /metrics is scraped THEN the WAL lag series exist for the pitr target only", async () => {
    let text = "";
    await eventually(async () => {
      ({ text } = await get("/metrics"));
      return !/capsule_bucket_check_last_success_timestamp_seconds 0\n/.test(text);
    }, 10_000);
    const labels = `cluster="${CLUSTER}",target="postgresql"`;
    assert.match(text, new RegExp(`capsule_wal_lag_bytes\\{${labels}\\} ${BEHIND}\\n`));
    const seconds = Number(new RegExp(`capsule_wal_lag_seconds\\{${labels}\\} ([0-9.]+)\\n`).exec(text)?.[1]);
    assert.ok(seconds >= (startedAt - Date.parse(head.coveredUntil)) / 1000 - 0.1, `lag ${seconds}`);
    assert.match(
      text,
      new RegExp(
        `capsule_wal_head_updated_timestamp_seconds\\{${labels}\\} ${Date.parse(head.updatedAt) / 1000}\\n`,
      ),
    );
    assert.doesNotMatch(text, /capsule_wal_lag_bytes\{[^}]*target="(plain|broken)"/);
  });

  test(
    "GIVEN the status page WHEN opened in chromium THEN the pitr target shows its WAL lag and the others none",
    { skip: !existsSync(CHROMIUM) && `${CHROMIUM} is missing` },
    async () => {
      let browser: Browser | undefined;
      try {
        browser = await chromium.launch({
          executablePath: CHROMIUM,
          headless: true,
          args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
        });
        const page = await browser.newPage();
        await page.goto(`${base}/`);
        await page.fill("#token", TOKEN);
        await page.click("#token-form button[type=submit]");
        const line = page.locator(
          `section[data-cluster="${CLUSTER}"] article[data-target="postgresql"] .wal-lag`,
        );
        await line.waitFor();
        assert.equal(await line.getAttribute("data-wal-lag-bytes"), String(BEHIND));
        const text = (await line.textContent()) ?? "";
        assert.match(text, /WAL lag: /);
        assert.match(text, /5\.0 MiB not yet in the bucket/);
        assert.ok(text.includes(head.coveredUntil), text);
        assert.equal(
          await page
            .locator(`section[data-cluster="${CLUSTER}"] article[data-target="plain"] .wal-lag`)
            .count(),
          0,
        );
        assert.match(
          (await page
            .locator(`section[data-cluster="${CLUSTER}"] article[data-target="broken"] .wal-lag`)
            .textContent()) ?? "",
          /WAL head: .*not valid JSON/,
        );
      } finally {
        await browser?.close();
      }
    },
  );
});
