/**
 * What `capsule install --dry-run --with-monitoring` adds for a Prometheus Operator stack: a ServiceMonitor that
 * scrapes the daemon with its API token, a PrometheusRule with capsule's alerts, and the Grafana dashboard in a
 * ConfigMap labelled for Grafana's dashboard sidecar. Without the operator, `deploy/capsule-alerts.yaml` (a plain
 * rules file) and `deploy/grafana-dashboard.json` carry the same rules and dashboard; `npm run render:monitoring`
 * rewrites both and a unit test keeps them equal to this code.
 */
import { dump } from "js-yaml";
import { ALERT_RULES } from "./alerts.js";
import { grafanaDashboard } from "./dashboard.js";
import { API_SECRET } from "./deployment.js";
import { labels } from "./labels.js";
import type { Manifest } from "../domain/manifest.js";
import { NAME, type InstallOptions } from "./options.js";

export const DASHBOARD_FILE = "capsule.json";

/** The ServiceMonitor, PrometheusRule and dashboard ConfigMap, in apply order. */
export function monitoringManifests(options: InstallOptions): Manifest[] {
  const metadata = (name: string, extra: Record<string, string> = {}) => ({
    name,
    namespace: options.namespace,
    labels: { ...labels(), ...extra },
  });
  const objects: Array<Manifest & Record<string, unknown>> = [
    {
      apiVersion: "monitoring.coreos.com/v1",
      kind: "ServiceMonitor",
      metadata: metadata(NAME),
      spec: {
        selector: { matchLabels: labels() },
        endpoints: [
          {
            port: "http",
            path: "/metrics",
            interval: "60s",
            // /metrics needs the same bearer token as the API.
            authorization: { type: "Bearer", credentials: { name: API_SECRET, key: "token" } },
          },
        ],
      },
    },
    {
      apiVersion: "monitoring.coreos.com/v1",
      kind: "PrometheusRule",
      metadata: metadata(NAME),
      spec: { groups: [ALERT_RULES] },
    },
    {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: metadata(`${NAME}-grafana-dashboard`, { grafana_dashboard: "1" }),
      data: { [DASHBOARD_FILE]: renderDashboard() },
    },
  ];
  return objects;
}

/**
 * One monitoring manifest as YAML. js-yaml rather than the compiler's emitter: alert expressions span lines and read
 * best as block scalars, and rule fields read best in Prometheus' own order (alert, expr, for…), not sorted.
 */
export function dumpMonitoringYaml(document: object): string {
  return dump(document, { lineWidth: -1, noRefs: true, quotingType: '"' });
}

/** `deploy/capsule-alerts.yaml`: a plain Prometheus rules file for `rule_files:`. */
export function renderAlertRules(): string {
  return (
    "# capsule's alert rules for Prometheus (rule_files), rendered from src/install/alerts.ts: do not edit, re-render.\n" +
    "# With the Prometheus Operator use `capsule install --dry-run --with-monitoring` (a PrometheusRule) instead.\n" +
    dumpMonitoringYaml({ groups: [ALERT_RULES] })
  );
}

/** `deploy/grafana-dashboard.json`. */
export function renderDashboard(): string {
  return `${JSON.stringify(grafanaDashboard(), null, 2)}\n`;
}
