/**
 * The alert rules and the Grafana dashboard against the metrics capsule really exports: a leading daemon (fake
 * Kubernetes API server, so it reconciles) reading a radosgw bucket with statefiles in every state is scraped, and
 * every metric and label each expression uses must be in that scrape.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Daemon } from "../../src/daemon/daemon.js";
import { ALERT_RULES } from "../../src/install/alerts.js";
import { dashboardExpressions, grafanaDashboard } from "../../src/install/dashboard.js";
import { cnvrgApp } from "../fakes/cnvrgapps.js";
import { FakeKubeApiServer } from "../fakes/kube-apiserver.js";
import { capturedLogger, eventually } from "../fakes/kube-clients.js";
import { testServers } from "../harness/index.js";
import { parseScrape, promqlProblems, type Scrape } from "../support/promql.js";
import { fillStatusBucket } from "../support/status-bucket.js";

const TOKEN = "monitoring-test-token-0123456789";

describe("alert rules and dashboard vs /metrics (radosgw, fake API server)", () => {
  let fake: FakeKubeApiServer;
  let daemon: Daemon;
  let scrape: Scrape;
  let text = "";

  before(async () => {
    const servers = await testServers();
    const { store } = await fillStatusBucket(servers, "monitoring");
    fake = await new FakeKubeApiServer().start();
    fake.put("cnvrgapps", cnvrgApp("cnvrg", "app"));
    daemon = new Daemon({
      kube: { kubeconfig: await fake.kubeconfigFile(), requestTimeoutMs: 2000 },
      store,
      listen: { host: "127.0.0.1", port: 0 },
      token: TOKEN,
      identity: "monitoring-test",
      lease: { name: "capsule-leader", namespace: "capsule-system" },
      resyncMs: 60_000,
      debounceMs: 10,
      processMetrics: false,
      log: capturedLogger(),
    });
    const { port } = await daemon.start();
    const get = async () =>
      (
        await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })
      ).text();
    await eventually(
      async () => {
        text = await get();
        // A finished reconcile pass and a bucket read: every series the rules use is there.
        return (
          /capsule_reconcile_total\{result="success"\}/.test(text) &&
          /capsule_backup_expected_interval_seconds\{/.test(text) &&
          /capsule_wal_lag_seconds\{/.test(text)
        );
      },
      15_000,
      "a reconcile pass and a bucket read",
    );
    scrape = parseScrape(text);
  });
  after(async () => {
    await daemon?.stop();
    await fake?.close();
  });

  test("GIVEN the scrape WHEN checked by the checker itself THEN a wrong metric, matcher or grouping label is caught", () => {
    assert.deepEqual(
      promqlProblems("max by (cluster) (capsule_backup_last_success_timestamp_seconds)", scrape),
      [],
    );
    assert.deepEqual(promqlProblems("capsule_backup_last_sucess_timestamp_seconds > 0", scrape), [
      "capsule_backup_last_sucess_timestamp_seconds has no samples in /metrics",
    ]);
    assert.match(
      promqlProblems("max by (cluster, namespace) (capsule_backup_failed_runs)", scrape).join("\n"),
      /capsule_backup_failed_runs has no label namespace/,
    );
    assert.match(
      promqlProblems('capsule_leader{pod="x"}', scrape).join("\n"),
      /capsule_leader has no label pod/,
    );
    assert.match(
      promqlProblems("capsule_leader and on (cluster) capsule_backup_failed_runs", scrape).join("\n"),
      /capsule_leader has no label cluster/,
    );
    assert.match(promqlProblems("max by (cluster (capsule_leader)", scrape).join("\n"), /syntax error/);
  });

  for (const rule of ALERT_RULES.rules) {
    test(`GIVEN alert ${rule.alert} WHEN its expression is read THEN every metric and label it uses is exported`, () => {
      assert.deepEqual(promqlProblems(rule.expr, scrape), [], rule.expr);
    });
  }

  test("GIVEN the Grafana dashboard WHEN every panel query is read THEN every metric and label it uses is exported", () => {
    const exprs = dashboardExpressions();
    assert.ok(exprs.length >= 10, `${exprs.length} queries`);
    for (const expr of exprs) assert.deepEqual(promqlProblems(expr, scrape), [], expr);
    const variables = (grafanaDashboard()["templating"] as { list: Array<{ query: unknown }> }).list;
    for (const { query } of variables) {
      if (typeof query === "string") continue; // the datasource picker
      const q = (query as { query: string }).query;
      const m = /^label_values\((.+), (\w+)\)$/.exec(q);
      assert.ok(m?.[1] && m[2], q);
      assert.deepEqual(promqlProblems(m[1], scrape), [], q);
      assert.ok(scrape.get(m[1].replace(/\{.*$/, ""))?.has(m[2]), `${q}: label ${m[2]}`);
    }
  });

  test("GIVEN the bucket's statefiles WHEN the failure and interval series are read THEN they hold what the rules compare", () => {
    const pg = 'cluster="cnvrg.app",target="postgresql",engine="postgresql"';
    assert.match(
      text,
      new RegExp(`capsule_backup_consecutive_failures\\{${pg.replace(/\./g, "\\.")}\\} 1\\n`),
    );
    assert.match(text, /capsule_leader 1\n/);
    assert.doesNotMatch(text, /capsule_reconcile_last_success_timestamp_seconds 0\n/, "a pass completed");
  });
});
