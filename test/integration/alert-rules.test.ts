/**
 * The alert rules evaluated by Prometheus itself: `promtool check rules` on deploy/capsule-alerts.yaml, and
 * `promtool test rules` feeding each alert synthetic series (label sets as capsule exports them, from two replicas)
 * to prove when it fires and when it stays quiet. promtool's clock starts at 0, so timestamps here are seconds from it.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import yaml from "js-yaml";
import { ALERT_RULES } from "../../src/install/alerts.js";
import { requireBinary, run } from "../harness/index.js";

const T = 'cluster="cnvrg.app",target="postgresql",engine="postgresql"';
const TARGET = { cluster: "cnvrg.app", target: "postgresql", engine: "postgresql" };
/** WAL series carry no engine label: only PostgreSQL streams WAL. */
const WAL = 'cluster="cnvrg.app",target="postgresql"';
const WAL_TARGET = { cluster: "cnvrg.app", target: "postgresql" };
/**
 * Series are sampled every 5 minutes at most, like a scrape: Prometheus looks back 5 minutes for a sample, and a
 * longer gap would reset an alert's `for`. Every backup series comes once per replica: the rules must not double-fire
 * or mis-join on `instance`.
 */
const replicas = (metric: string, labels: string, values: string) =>
  ["a", "b"].map((instance) => ({
    series: `${metric}{${labels}${labels ? "," : ""}instance="${instance}",job="capsule"}`,
    values,
  }));

interface AlertCase {
  readonly name: string;
  readonly interval: string;
  readonly series: Array<{ series: string; values: string }>;
  readonly checks: Array<{ at: string; alert: string; fires: Record<string, string>[] }>;
}

const critical = (labels: Record<string, string> = TARGET) => ({ severity: "critical", ...labels });
const warning = (labels: Record<string, string> = TARGET) => ({ severity: "warning", ...labels });

const CASES: AlertCase[] = [
  {
    name: "WAL lag over a minute for five minutes",
    interval: "1m",
    series: [
      ...replicas("capsule_wal_lag_seconds", WAL, "4 5 3 90 95 100 110 120 130 140 150"),
      ...replicas("capsule_wal_head_updated_timestamp_seconds", WAL, "0+60x10"),
    ],
    checks: [
      { at: "4m", alert: "CapsuleWalLagHigh", fires: [] }, // over 60 s, pending: `for: 5m`
      { at: "8m", alert: "CapsuleWalLagHigh", fires: [{ severity: "critical", ...WAL_TARGET }] },
      { at: "8m", alert: "CapsuleWalStreamStale", fires: [] },
    ],
  },
  {
    name: "a WAL head no longer rewritten",
    interval: "1m",
    series: [
      ...replicas("capsule_wal_lag_seconds", WAL, "3x20"),
      ...replicas("capsule_wal_head_updated_timestamp_seconds", WAL, "0x20"),
    ],
    checks: [
      { at: "9m", alert: "CapsuleWalStreamStale", fires: [] }, // 9 min old: stale 4 min, pending
      { at: "11m", alert: "CapsuleWalStreamStale", fires: [{ severity: "critical", ...WAL_TARGET }] },
    ],
  },
  {
    name: "a healthy WAL stream",
    interval: "1m",
    series: [
      ...replicas("capsule_wal_lag_seconds", WAL, "2 5 8 3 12 4 6x30"),
      ...replicas("capsule_wal_head_updated_timestamp_seconds", WAL, "0+60x40"),
    ],
    checks: [
      { at: "30m", alert: "CapsuleWalLagHigh", fires: [] },
      { at: "30m", alert: "CapsuleWalStreamStale", fires: [] },
    ],
  },
  {
    name: "a backup older than twice its measured hourly interval",
    interval: "5m",
    series: [
      ...replicas("capsule_backup_last_success_timestamp_seconds", T, "0x40"),
      ...replicas("capsule_backup_expected_interval_seconds", T, "3600x40"),
    ],
    checks: [
      { at: "1h55m", alert: "CapsuleBackupTooOld", fires: [] },
      { at: "2h5m", alert: "CapsuleBackupTooOld", fires: [] }, // pending: `for: 10m`
      { at: "2h15m", alert: "CapsuleBackupTooOld", fires: [critical()] },
    ],
  },
  {
    name: "no interval measured yet: one day assumed",
    interval: "5m",
    series: replicas("capsule_backup_last_success_timestamp_seconds", T, "0x600"),
    checks: [
      { at: "47h", alert: "CapsuleBackupTooOld", fires: [] },
      { at: "48h30m", alert: "CapsuleBackupTooOld", fires: [critical()] },
    ],
  },
  {
    name: "backups that keep succeeding",
    interval: "5m",
    series: [
      ...replicas("capsule_backup_last_success_timestamp_seconds", T, "0+300x100"),
      ...replicas("capsule_backup_expected_interval_seconds", T, "300x100"),
    ],
    checks: [{ at: "8h", alert: "CapsuleBackupTooOld", fires: [] }],
  },
  {
    name: "failures in a row",
    interval: "1m",
    series: replicas("capsule_backup_consecutive_failures", T, "0 2 3 3"),
    checks: [
      { at: "1m", alert: "CapsuleBackupFailuresInARow", fires: [] },
      { at: "2m", alert: "CapsuleBackupFailuresInARow", fires: [warning({ ...TARGET })] },
    ],
  },
  {
    name: "runs but never a success",
    interval: "5m",
    series: [
      ...replicas("capsule_backup_failed_runs", T, "2x20"),
      ...replicas("capsule_backup_failed_runs", 'cluster="cnvrg.app",target="redis",engine="redis"', "1x20"),
      ...replicas(
        "capsule_backup_last_success_timestamp_seconds",
        'cluster="cnvrg.app",target="redis",engine="redis"',
        "0x20",
      ),
    ],
    checks: [{ at: "1h10m", alert: "CapsuleBackupNeverSucceeded", fires: [critical()] }],
  },
  {
    name: "a failed restore drill",
    interval: "1m",
    series: [
      ...replicas("capsule_verification_last_success", T, "1 0 0"),
      ...replicas(
        "capsule_verification_last_success",
        'cluster="cnvrg.app",target="redis",engine="redis"',
        "1x2",
      ),
    ],
    checks: [
      { at: "0m", alert: "CapsuleVerificationFailed", fires: [] },
      { at: "1m", alert: "CapsuleVerificationFailed", fires: [critical()] },
    ],
  },
  {
    name: "a restore drill older than eight days",
    interval: "5m",
    series: replicas("capsule_verification_last_timestamp_seconds", T, "0x2500"),
    checks: [
      { at: "7d", alert: "CapsuleVerificationTooOld", fires: [] },
      { at: "8d2h", alert: "CapsuleVerificationTooOld", fires: [warning()] },
    ],
  },
  {
    name: "a leader that reconciles, and a standby that never does",
    interval: "5m",
    series: [
      { series: 'capsule_reconcile_last_success_timestamp_seconds{instance="a"}', values: "0+300x30" },
      { series: 'capsule_reconcile_last_success_timestamp_seconds{instance="b"}', values: "0x30" },
      { series: 'capsule_leader{instance="a"}', values: "1x30" },
      { series: 'capsule_leader{instance="b"}', values: "0x30" },
    ],
    checks: [
      { at: "2h", alert: "CapsuleNotReconciling", fires: [] },
      { at: "2h", alert: "CapsuleDaemonDown", fires: [] },
    ],
  },
  {
    name: "a leader stuck since its first pass",
    interval: "5m",
    series: [
      { series: 'capsule_reconcile_last_success_timestamp_seconds{instance="a"}', values: "0x20" },
      { series: 'capsule_bucket_check_last_success_timestamp_seconds{instance="a"}', values: "0x20" },
    ],
    checks: [
      { at: "30m", alert: "CapsuleNotReconciling", fires: [] },
      { at: "40m", alert: "CapsuleNotReconciling", fires: [{ severity: "warning" }] },
      { at: "15m", alert: "CapsuleBucketUnreadable", fires: [] },
      { at: "25m", alert: "CapsuleBucketUnreadable", fires: [{ severity: "critical" }] },
      { at: "20m", alert: "CapsuleDaemonDown", fires: [{ severity: "critical" }] },
    ],
  },
  {
    name: "corrupt statefiles",
    interval: "5m",
    series: replicas("capsule_backup_corrupt_statefiles", 'cluster="cnvrg.app"', "1x20"),
    checks: [
      {
        at: "1h10m",
        alert: "CapsuleCorruptStatefiles",
        fires: [{ severity: "warning", cluster: "cnvrg.app" }],
      },
    ],
  },
];

describe("alert rules in promtool", () => {
  let promtool: string;
  let dir: string;

  before(async () => {
    promtool = requireBinary("promtool", "prometheus");
    dir = await mkdtemp(join(tmpdir(), "capsule-rules-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("GIVEN deploy/capsule-alerts.yaml WHEN promtool checks it THEN every rule and template is valid", async () => {
    const { stdout } = await run(promtool, ["check", "rules", resolve("deploy/capsule-alerts.yaml")]);
    assert.match(stdout, new RegExp(`SUCCESS: ${ALERT_RULES.rules.length} rules found`));
  });

  test("GIVEN synthetic series from two replicas WHEN promtool evaluates the rules THEN each alert fires exactly when it should", async () => {
    // Annotations are left out: promtool compares them verbatim, and what matters here is when each alert fires.
    const rules = {
      groups: [{ ...ALERT_RULES, rules: ALERT_RULES.rules.map(({ annotations: _, ...r }) => r) }],
    };
    await writeFile(join(dir, "rules.yaml"), yaml.dump(rules));
    const tests = {
      rule_files: ["rules.yaml"],
      evaluation_interval: "1m",
      tests: CASES.map((c) => ({
        name: c.name,
        interval: c.interval,
        input_series: c.series,
        alert_rule_test: c.checks.map((check) => ({
          eval_time: check.at,
          alertname: check.alert,
          exp_alerts: check.fires.map((labels) => ({ exp_labels: labels })),
        })),
      })),
    };
    await writeFile(join(dir, "tests.yaml"), yaml.dump(tests));
    let stdout = "";
    try {
      ({ stdout } = await run(promtool, ["test", "rules", "tests.yaml"], { cwd: dir }));
    } catch (error) {
      assert.fail(error instanceof Error ? error.message : String(error));
    }
    assert.match(stdout, /SUCCESS/);
  });
});
