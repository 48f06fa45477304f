/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// The callbacks given to evaluateAll run in the browser, on DOM elements.
/**
 * The status page in a real browser: Debian's chromium, driven by playwright-core (never a downloaded browser),
 * against a status server whose bucket on radosgw holds succeeded, failed, abandoned, verified and corrupt statefiles.
 * Screenshots go to test-output/status-page/ for a human to look at.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { chromium, type Browser, type Page } from "playwright-core";
import { Daemon } from "../../src/daemon/daemon.js";
import { BackupStore } from "../../src/storage/backup-store.js";
import { openBucket } from "../../src/storage/open-store.js";
import { capturedLogger } from "../fakes/kube-clients.js";
import { s3Env, testServers, uniqueName, type TestServers } from "../harness/index.js";
import { CLUSTER, fillStatusBucket, OTHER_CLUSTER, type StatusBucket } from "../support/status-bucket.js";

const TOKEN = "page-test-token-0123456789";
const CHROMIUM = "/usr/bin/chromium";
const OUTPUT = join("test-output", "status-page");
/** Flags that let Debian's chromium run headless as root in a container, with no call home. */
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

function statusDaemon(store: BackupStore, token?: string): Daemon {
  return new Daemon({
    statusOnly: true,
    store,
    listen: { host: "127.0.0.1", port: 0 },
    ...(token !== undefined && { token }),
    lease: { name: "", namespace: "" },
    identity: "test",
    processMetrics: false,
    log: capturedLogger(),
  });
}

describe(
  "status page (chromium, radosgw)",
  { skip: !existsSync(CHROMIUM) && `${CHROMIUM} is missing` },
  () => {
    let servers: TestServers;
    let bucket: StatusBucket;
    let daemon: Daemon;
    let base: string;
    let browser: Browser;
    let page: Page;
    const consoleErrors: string[] = [];

    before(async () => {
      servers = await testServers();
      bucket = await fillStatusBucket(servers, "page");
      daemon = statusDaemon(bucket.store, TOKEN);
      base = `http://127.0.0.1:${(await daemon.start()).port}`;
      await mkdir(OUTPUT, { recursive: true });
      browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
      page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      page.on("console", (message) => {
        if (message.type() === "error") consoleErrors.push(message.text());
      });
      page.on("pageerror", (error) => consoleErrors.push(error.message));
    });
    after(async () => {
      await browser?.close();
      await daemon?.stop();
    });

    /** The rows of one target's table, top to bottom. */
    async function rows(cluster: string, target: string) {
      return page
        .locator(`section[data-cluster="${cluster}"] article[data-target="${target}"] tbody tr`)
        .evaluateAll((trs) =>
          trs.map((tr) => ({
            id: tr.getAttribute("data-backup-id"),
            state: tr.querySelector(".badge[class*='state-']")?.textContent,
            verification: tr.querySelector(".badge[class*='verification-']")?.textContent ?? null,
            size: tr.querySelectorAll("td")[2]?.textContent,
          })),
        );
    }

    test("GIVEN a token is configured WHEN the page opens THEN the shell loads without it and asks for the token", async () => {
      const shell = await fetch(`${base}/`);
      assert.equal(shell.status, 200);
      assert.match(shell.headers.get("content-security-policy") ?? "", /script-src 'self'/);
      assert.match(await shell.text(), /data-auth="token"/);
      const script = await fetch(`${base}/ui/app.js`, { method: "HEAD" });
      assert.equal(script.status, 200, "the page's files need no token either");
      assert.match(script.headers.get("content-type") ?? "", /^text\/javascript/);
      assert.equal((await fetch(`${base}/`, { method: "POST" })).status, 405);
      assert.equal((await fetch(`${base}/ui/other.js`)).status, 404);
      await page.goto(`${base}/`);
      await page.locator("#token-form").waitFor({ state: "visible" });
      assert.equal(await page.locator("#status").textContent(), "The API needs a token.");
      assert.equal(await page.locator("section.cluster").count(), 0, "nothing is shown before the token");
    });

    test("GIVEN the token WHEN entered THEN clusters, targets and rows render newest first with the right badges", async () => {
      await page.fill("#token", TOKEN);
      await page.click("#token-form button[type=submit]");
      await page.locator(`section[data-cluster="${OTHER_CLUSTER}"]`).waitFor();
      assert.ok(await page.locator("#token-form").isHidden(), "the token form goes away");
      assert.deepEqual(
        await page
          .locator("section.cluster")
          .evaluateAll((s) => s.map((e) => e.getAttribute("data-cluster"))),
        [CLUSTER, OTHER_CLUSTER],
      );
      const { refs } = bucket;
      assert.deepEqual(await rows(CLUSTER, "postgresql"), [
        { id: refs.failed.backupId, state: "failed", verification: "unverified", size: "—" },
        { id: refs.pg2.backupId, state: "succeeded", verification: "unverified", size: "14 B" },
        { id: refs.pg1.backupId, state: "succeeded", verification: "failed", size: "5 B" },
      ]);
      assert.deepEqual(await rows(CLUSTER, "redis"), [
        { id: refs.redis.backupId, state: "succeeded", verification: "verified", size: "3 B" },
        { id: bucket.abandonedId, state: "abandoned", verification: "unverified", size: "—" },
      ]);
      const corrupt = await rows(CLUSTER, "");
      assert.deepEqual(
        corrupt.map((r) => [r.id, r.state]),
        [[bucket.corruptId, "corrupt"]],
      );
      const failedRow = page.locator(`tr[data-backup-id="${refs.failed.backupId}"] .error`);
      assert.match((await failedRow.textContent()) ?? "", /dumping: pg_dump: connection refused/);
      assert.ok(!(await page.content()).includes(servers.s3.secretAccessKey), "no secret on the page");
      await page.screenshot({ path: join(OUTPUT, "overview.png"), fullPage: true });
    });

    test("GIVEN the overview WHEN a target's chart is read THEN it has one point per succeeded backup, oldest first", async () => {
      const points = (target: string) =>
        page
          .locator(`section[data-cluster="${CLUSTER}"] article[data-target="${target}"] svg.spark`)
          .evaluateAll((charts) =>
            charts.map((c) => ({
              declared: c.getAttribute("data-points"),
              ids: [...c.querySelectorAll("circle.point")].map((p) => p.getAttribute("data-backup-id")),
            })),
          );
      const { refs } = bucket;
      const pg = await points("postgresql");
      assert.equal(pg.length, 2, "a size chart and a duration chart");
      for (const chart of pg)
        assert.deepEqual(chart, { declared: "2", ids: [refs.pg1.backupId, refs.pg2.backupId] });
      for (const chart of await points("redis"))
        assert.deepEqual(chart, { declared: "1", ids: [refs.redis.backupId] });
      // The larger pg2 artifact is drawn higher (smaller y) than pg1's.
      const ys = await page
        .locator(`article[data-target="postgresql"] figure.chart`)
        .first()
        .locator("circle.point")
        .evaluateAll((cs) => cs.map((c) => Number(c.getAttribute("cy"))));
      assert.ok((ys[1] ?? 0) < (ys[0] ?? 0), `size points ${ys.join(", ")}`);
    });

    test("GIVEN the overview WHEN a backup is opened THEN its detail view shows its statefile, secrets redacted", async () => {
      const { refs } = bucket;
      await page.click(`a[href$="/${refs.pg2.backupId}"]`);
      await page.locator(`section.detail[data-backup-id="${refs.pg2.backupId}"]`).waitFor();
      const statefile = JSON.parse((await page.locator("pre.statefile").textContent()) ?? "") as Record<
        string,
        unknown
      >;
      assert.equal(statefile["backupId"], refs.pg2.backupId);
      assert.equal(statefile["status"], "succeeded");
      assert.equal((statefile["artifact"] as { sizeBytes: number }).sizeBytes, 14);
      await page.screenshot({ path: join(OUTPUT, "detail.png"), fullPage: true });

      await page.goto(`${base}/#/backup/${CLUSTER}/${refs.failed.backupId}`);
      await page.locator(`section.detail[data-backup-id="${refs.failed.backupId}"]`).waitFor();
      const failed = (await page.locator("pre.statefile").textContent()) ?? "";
      assert.match(failed, /"status": "failed"/);
      assert.ok(!failed.includes(servers.s3.secretAccessKey), "the statefile's error is redacted");

      await page.goto(`${base}/#/backup/${CLUSTER}/${bucket.corruptId}`);
      await page.locator(`section.detail[data-backup-id="${bucket.corruptId}"]`).waitFor();
      assert.equal(
        await page.locator("section.detail p.error").textContent(),
        "The statefile cannot be read.",
      );
      await page.click("text=← All backups");
      await page.locator(`section[data-cluster="${CLUSTER}"]`).waitFor();
    });

    test("GIVEN everything so far WHEN the console is read THEN the page logged no error", () => {
      assert.deepEqual(consoleErrors, []);
    });

    test("GIVEN a refused token WHEN the page loads THEN it asks again and says so", async () => {
      const other = await browser.newPage();
      try {
        await other.goto(`${base}/`);
        await other.evaluate('sessionStorage.setItem("capsule.token", "wrong-token-wrong-token")');
        await other.reload();
        await other.locator("#token-form").waitFor({ state: "visible" });
        assert.match((await other.locator("#status").textContent()) ?? "", /token was refused/);
      } finally {
        await other.close();
      }
    });

    test("GIVEN a bucket that does not exist WHEN the page opens THEN it says the bucket is unreachable", async () => {
      const { store: objects, prefix } = openBucket(
        `s3://${uniqueName("missing")}/capsule`,
        {},
        s3Env(servers.s3),
      );
      const broken = statusDaemon(new BackupStore(objects, prefix));
      const { port } = await broken.start();
      const other = await browser.newPage({ viewport: { width: 1280, height: 400 } });
      try {
        await other.goto(`http://127.0.0.1:${port}/`);
        const alert = other.locator("#alert");
        await alert.waitFor({ state: "visible" });
        assert.match((await alert.textContent()) ?? "", /^The bucket is unreachable: /);
        assert.equal(await alert.getAttribute("data-code"), "bucket_error");
        assert.equal(await other.locator("section.cluster").count(), 0);
        await other.screenshot({ path: join(OUTPUT, "bucket-unreachable.png") });
      } finally {
        await other.close();
        await broken.stop();
      }
    });
  },
);
