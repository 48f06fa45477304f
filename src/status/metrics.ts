/**
 * The daemon's Prometheus metrics (prom-client), one registry per daemon so several can live in one process (tests,
 * embedding). Backup metrics are per cluster/target and come from the statefiles in the bucket (refreshed by the
 * bucket monitor); reconcile and request metrics are counted as the loops run.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { buildInfo } from "../version.js";
import type { WalLag } from "./wal-lag.js";

export interface TargetBackupStats {
  readonly cluster: string;
  readonly target: string;
  readonly engine: string;
  /** Unix seconds of the newest succeeded backup's finish. */
  readonly lastSuccessTime?: number;
  readonly lastSuccessSizeBytes?: number;
  readonly lastSuccessDurationSeconds?: number;
  /** Failed and abandoned runs present in the bucket. */
  readonly failedRuns: number;
  /** Unix seconds of the newest failed or abandoned run's start. */
  readonly lastFailureTime?: number;
  readonly runningRuns: number;
  /** Unix seconds of the newest restore drill on any of the target's backups. */
  readonly lastVerificationTime?: number;
  /** 1 when that drill verified the backup, 0 when it failed. */
  readonly lastVerificationSuccess?: number;
  /** 1 when the newest succeeded backup has been verified (an alert fires when it stays 0 too long). */
  readonly newestVerified?: number;
  /** Failed or abandoned runs newer than the newest succeeded one: the failures in a row. */
  readonly consecutiveFailures: number;
  /** The usual gap between the target's scheduled runs (see `expectedInterval` in views.ts). */
  readonly expectedIntervalSeconds?: number;
}

const TARGET_LABELS = ["cluster", "target", "engine"] as const;
const WAL_LABELS = ["cluster", "target"] as const;

export class DaemonMetrics {
  readonly registry = new Registry();

  readonly lastSuccess = new Gauge({
    name: "capsule_backup_last_success_timestamp_seconds",
    help: "Finish time of the newest succeeded backup, per cluster and target",
    labelNames: TARGET_LABELS,
    registers: [this.registry],
  });
  readonly lastSize = new Gauge({
    name: "capsule_backup_last_success_size_bytes",
    help: "Artifact size of the newest succeeded backup",
    labelNames: TARGET_LABELS,
    registers: [this.registry],
  });
  readonly lastDuration = new Gauge({
    name: "capsule_backup_last_success_duration_seconds",
    help: "Duration of the newest succeeded backup",
    labelNames: TARGET_LABELS,
    registers: [this.registry],
  });
  readonly failedRuns = new Gauge({
    name: "capsule_backup_failed_runs",
    help: "Failed or abandoned runs whose statefiles are in the bucket",
    labelNames: TARGET_LABELS,
    registers: [this.registry],
  });
  readonly lastFailure = new Gauge({
    name: "capsule_backup_last_failure_timestamp_seconds",
    help: "Start time of the newest failed or abandoned run",
    labelNames: TARGET_LABELS,
    registers: [this.registry],
  });
  readonly runningRuns = new Gauge({
    name: "capsule_backup_running_runs",
    help: "Runs in progress (fresh heartbeat)",
    labelNames: TARGET_LABELS,
    registers: [this.registry],
  });
  readonly lastVerification = new Gauge({
    name: "capsule_verification_last_timestamp_seconds",
    help: "When the newest restore drill on the target's backups ran",
    labelNames: TARGET_LABELS,
    registers: [this.registry],
  });
  readonly lastVerificationSuccess = new Gauge({
    name: "capsule_verification_last_success",
    help: "1 if the newest restore drill verified its backup, 0 if it failed",
    labelNames: TARGET_LABELS,
    registers: [this.registry],
  });
  readonly newestVerified = new Gauge({
    name: "capsule_backup_newest_verified",
    help: "1 if the newest succeeded backup has been proven by a restore drill",
    labelNames: TARGET_LABELS,
    registers: [this.registry],
  });
  readonly consecutiveFailures = new Gauge({
    name: "capsule_backup_consecutive_failures",
    help: "Failed or abandoned runs since the newest succeeded backup",
    labelNames: TARGET_LABELS,
    registers: [this.registry],
  });
  readonly expectedInterval = new Gauge({
    name: "capsule_backup_expected_interval_seconds",
    help: "Median gap between the target's recent scheduled runs, from their statefiles (needs two runs)",
    labelNames: TARGET_LABELS,
    registers: [this.registry],
  });
  readonly corruptStatefiles = new Gauge({
    name: "capsule_backup_corrupt_statefiles",
    help: "Statefiles that cannot be read or parsed, per cluster",
    labelNames: ["cluster"],
    registers: [this.registry],
  });
  readonly bucketCheck = new Gauge({
    name: "capsule_bucket_check_last_success_timestamp_seconds",
    help: "When the bucket was last read successfully",
    registers: [this.registry],
  });
  readonly bucketErrors = new Counter({
    name: "capsule_bucket_check_errors_total",
    help: "Failed reads of the bucket by the monitor",
    registers: [this.registry],
  });

  readonly walLagSeconds = new Gauge({
    name: "capsule_wal_lag_seconds",
    help: "Seconds between now and the newest point a restore can reach (head.json coveredUntil), per pitr target",
    labelNames: WAL_LABELS,
    registers: [this.registry],
  });
  readonly walLagBytes = new Gauge({
    name: "capsule_wal_lag_bytes",
    help: "WAL bytes the server had written that are not yet in the bucket (serverLsn - archivedLsn)",
    labelNames: WAL_LABELS,
    registers: [this.registry],
  });
  readonly walHeadUpdated = new Gauge({
    name: "capsule_wal_head_updated_timestamp_seconds",
    help: "When the WAL streamer last wrote its head.json (its clock), per pitr target",
    labelNames: WAL_LABELS,
    registers: [this.registry],
  });

  readonly reconciles = new Counter({
    name: "capsule_reconcile_total",
    help: "Reconcile passes, by result (success, partial: some objects failed, error: the pass failed)",
    labelNames: ["result"],
    registers: [this.registry],
  });
  readonly reconcileErrors = new Counter({
    name: "capsule_reconcile_errors_total",
    help: "Errors during reconciliation, by what failed",
    labelNames: ["operation"],
    registers: [this.registry],
  });
  readonly reconcileWrites = new Counter({
    name: "capsule_reconcile_writes_total",
    help: "CronJob and Deployment writes made by the reconciler",
    labelNames: ["verb"],
    registers: [this.registry],
  });
  readonly reconcileDuration = new Histogram({
    name: "capsule_reconcile_duration_seconds",
    help: "Duration of reconcile passes",
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly reconcileLastSuccess = new Gauge({
    name: "capsule_reconcile_last_success_timestamp_seconds",
    help: "End of the last reconcile pass that completed without errors",
    registers: [this.registry],
  });
  readonly managedCronJobs = new Gauge({
    name: "capsule_managed_cronjobs",
    help: "CronJobs the last reconcile pass wanted to exist",
    registers: [this.registry],
  });
  readonly managedDeployments = new Gauge({
    name: "capsule_managed_deployments",
    help: "WAL streamer Deployments the last reconcile pass wanted to exist",
    registers: [this.registry],
  });
  readonly skippedTargets = new Gauge({
    name: "capsule_skipped_targets",
    help: "CnvrgApp targets (or whole apps) skipped by the last reconcile pass",
    registers: [this.registry],
  });
  readonly leader = new Gauge({
    name: "capsule_leader",
    help: "1 while this replica holds the Lease",
    registers: [this.registry],
  });
  readonly requests = new Counter({
    name: "capsule_requests_total",
    help: "Bucket requests handled by the watcher, by action and outcome",
    labelNames: ["action", "outcome"],
    registers: [this.registry],
  });
  readonly requestErrors = new Counter({
    name: "capsule_request_errors_total",
    help: "Errors while handling bucket requests (retried on the next poll)",
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const info = new Gauge({
      name: "capsule_build_info",
      help: "capsule's version, commit, build date and Node.js runtime; always 1",
      labelNames: ["version", "commit", "date", "node"],
      registers: [this.registry],
    });
    const { version, commit, date, node } = buildInfo;
    info.set({ version, commit, date, node }, 1);
    if (options.defaultMetrics ?? true)
      collectDefaultMetrics({ register: this.registry, prefix: "capsule_" });
  }

  /** Replaces every per-target backup series: targets that vanished from the bucket vanish from /metrics too. */
  setBackupStats(stats: readonly TargetBackupStats[], corrupt: ReadonlyMap<string, number>): void {
    for (const gauge of [
      this.lastSuccess,
      this.lastSize,
      this.lastDuration,
      this.failedRuns,
      this.lastFailure,
      this.runningRuns,
      this.lastVerification,
      this.lastVerificationSuccess,
      this.newestVerified,
      this.consecutiveFailures,
      this.expectedInterval,
      this.corruptStatefiles,
    ])
      gauge.reset();
    for (const s of stats) {
      const labels = { cluster: s.cluster, target: s.target, engine: s.engine };
      if (s.lastSuccessTime !== undefined) this.lastSuccess.set(labels, s.lastSuccessTime);
      if (s.lastSuccessSizeBytes !== undefined) this.lastSize.set(labels, s.lastSuccessSizeBytes);
      if (s.lastSuccessDurationSeconds !== undefined)
        this.lastDuration.set(labels, s.lastSuccessDurationSeconds);
      if (s.lastFailureTime !== undefined) this.lastFailure.set(labels, s.lastFailureTime);
      this.failedRuns.set(labels, s.failedRuns);
      this.runningRuns.set(labels, s.runningRuns);
      if (s.lastVerificationTime !== undefined) this.lastVerification.set(labels, s.lastVerificationTime);
      if (s.lastVerificationSuccess !== undefined)
        this.lastVerificationSuccess.set(labels, s.lastVerificationSuccess);
      if (s.newestVerified !== undefined) this.newestVerified.set(labels, s.newestVerified);
      this.consecutiveFailures.set(labels, s.consecutiveFailures);
      if (s.expectedIntervalSeconds !== undefined)
        this.expectedInterval.set(labels, s.expectedIntervalSeconds);
    }
    for (const [cluster, count] of corrupt) this.corruptStatefiles.set({ cluster }, count);
  }

  /** Replaces every WAL series: a target whose streaming stopped for good drops out with its head. */
  setWalLags(lags: readonly WalLag[]): void {
    for (const gauge of [this.walLagSeconds, this.walLagBytes, this.walHeadUpdated]) gauge.reset();
    for (const lag of lags) {
      const labels = { cluster: lag.cluster, target: lag.target };
      this.walLagSeconds.set(labels, lag.lagSeconds);
      this.walLagBytes.set(labels, lag.lagBytes);
      this.walHeadUpdated.set(labels, Date.parse(lag.updatedAt) / 1000);
    }
  }
}
