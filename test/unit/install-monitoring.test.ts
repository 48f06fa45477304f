/**
 * `capsule install --dry-run --with-monitoring`: the ServiceMonitor, PrometheusRule and dashboard ConfigMap, and the
 * committed plain rules file and dashboard. Whether the rules' and panels' metrics exist is checked against a real
 * /metrics in test/integration/monitoring.test.ts.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, test } from "node:test";
import yaml from "js-yaml";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { ALERT_RULES } from "../../src/install/alerts.js";
import { renderInstall } from "../../src/install/manifests.js";
import { renderAlertRules, renderDashboard } from "../../src/install/monitoring.js";
import { INSTALL_DEFAULTS } from "../../src/install/options.js";
import { capsule } from "../support/cli.js";

interface Doc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}

const docs = (text: string) => yaml.loadAll(text) as Doc[];
const PROMETHEUS_DURATION = /^(\d+(ms|s|m|h|d|w|y))+$/;

describe("capsule install --with-monitoring", () => {
  test("GIVEN --with-monitoring WHEN rendered THEN a ServiceMonitor, a PrometheusRule and the dashboard ConfigMap follow the daemon's objects", async () => {
    const { code, stdout, stderr } = await capsule([
      "install",
      "--dry-run",
      "--with-monitoring",
      "-n",
      "backup",
    ]);
    assert.equal(code, 0, stderr);
    const objects = docs(stdout);
    const plain = docs((await capsule(["install", "--dry-run", "-n", "backup"])).stdout);
    assert.deepEqual(
      objects.map((d) => `${d.kind}/${d.metadata.name}`),
      [
        ...plain.map((d) => `${d.kind}/${d.metadata.name}`),
        "ServiceMonitor/capsule",
        "PrometheusRule/capsule",
        "ConfigMap/capsule-grafana-dashboard",
      ],
    );
    assert.ok(!plain.some((d) => d.kind === "PrometheusRule"), "monitoring only when asked");
    for (const d of objects.slice(plain.length)) assert.equal(d.metadata.namespace, "backup", d.kind);

    // The ServiceMonitor picks the daemon's Service and its port, with the API token Secret.
    const service = objects.find((d) => d.kind === "Service") as Doc & {
      spec: { ports: Array<{ name: string }> };
    };
    const monitor = objects.find((d) => d.kind === "ServiceMonitor") as Doc & {
      spec: {
        selector: { matchLabels: Record<string, string> };
        endpoints: Array<{ port: string; path: string; authorization: { credentials: { name: string } } }>;
      };
    };
    for (const [k, v] of Object.entries(monitor.spec.selector.matchLabels))
      assert.equal(service.metadata.labels?.[k], v, `Service label ${k}`);
    assert.ok(service.spec.ports.some((p) => p.name === monitor.spec.endpoints[0]?.port));
    assert.equal(monitor.spec.endpoints[0]?.path, "/metrics");
    assert.equal(monitor.spec.endpoints[0]?.authorization.credentials.name, "capsule-api");

    const rule = objects.find((d) => d.kind === "PrometheusRule") as Doc & {
      spec: { groups: Array<{ rules: Array<Record<string, unknown>> }> };
    };
    assert.deepEqual(rule.spec.groups, [JSON.parse(JSON.stringify(ALERT_RULES))], "the YAML round-trips");

    const configMap = objects.find((d) => d.kind === "ConfigMap")!;
    new ConfigMap(configMap).validate();
    assert.equal(configMap.metadata.labels?.["grafana_dashboard"], "1", "Grafana's sidecar picks it up");
    assert.equal(configMap.data?.["capsule.json"], renderDashboard());
  });

  test("GIVEN the alert rules WHEN inspected THEN they cover the issue's cases with valid fields", () => {
    const names = ALERT_RULES.rules.map((r) => r.alert);
    for (const wanted of [
      "CapsuleBackupTooOld",
      "CapsuleVerificationFailed",
      "CapsuleVerificationTooOld",
      "CapsuleBackupFailuresInARow",
      "CapsuleNotReconciling",
    ])
      assert.ok(names.includes(wanted), wanted);
    assert.equal(new Set(names).size, names.length, "alert names are unique");
    for (const r of ALERT_RULES.rules) {
      assert.match(r.for, PROMETHEUS_DURATION, `${r.alert}: for`);
      assert.ok(["critical", "warning"].includes(r.labels.severity), r.alert);
      assert.ok(r.annotations.summary.length > 0 && r.annotations.description.length > 0, r.alert);
    }
    const tooOld = ALERT_RULES.rules.find((r) => r.alert === "CapsuleBackupTooOld")!;
    assert.match(
      tooOld.expr,
      /> 2 \* max by \(cluster, target, engine\) \(\s*capsule_backup_expected_interval_seconds/,
    );
  });

  test("GIVEN the committed deploy/capsule-alerts.yaml and deploy/grafana-dashboard.json WHEN compared THEN they are the renderings", async () => {
    assert.equal(await readFile("deploy/capsule-alerts.yaml", "utf8"), renderAlertRules());
    assert.equal(await readFile("deploy/grafana-dashboard.json", "utf8"), renderDashboard());
    const rules = yaml.load(renderAlertRules()) as { groups: unknown[] };
    assert.deepEqual(rules.groups, [JSON.parse(JSON.stringify(ALERT_RULES))]);
    const dashboard = JSON.parse(renderDashboard()) as { uid: string; panels: Array<{ id: number }> };
    assert.equal(dashboard.uid, "capsule-backups");
    const ids = dashboard.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, "panel ids are unique");
  });

  test("GIVEN --with-monitoring WHEN rendered twice THEN the bytes are identical", () => {
    const options = { ...INSTALL_DEFAULTS, withMonitoring: true };
    assert.equal(renderInstall(options), renderInstall(options));
  });
});
