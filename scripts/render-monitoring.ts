/**
 * Rewrites deploy/capsule-alerts.yaml and deploy/grafana-dashboard.json from src/install/ (test/unit/install.test.ts
 * fails while they differ). Run from the repository root: npx tsx scripts/render-monitoring.ts
 */
import { writeFileSync } from "node:fs";
import { renderAlertRules, renderDashboard } from "../src/install/monitoring.js";

writeFileSync("deploy/capsule-alerts.yaml", renderAlertRules());
writeFileSync("deploy/grafana-dashboard.json", renderDashboard());
console.log("wrote deploy/capsule-alerts.yaml and deploy/grafana-dashboard.json");
