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

type TargetStat = Exclude<keyof TargetBackupStats, "cluster" | "target" | "engine">;

/** The per-target gauges, each the value of one field of `TargetBackupStats`: a field left out sets no series. */
const TARGET_GAUGES: ReadonlyArray<readonly [TargetStat, string, string]> = [
  [
    "lastSuccessTime",
    "capsule_backup_last_success_timestamp_seconds",
    "Finish time of the newest succeeded backup, per cluster and target",
  ],
  [
    "lastSuccessSizeBytes",
    "capsule_backup_last_success_size_bytes",
    "Artifact size of the newest succeeded backup",
  ],
  [
    "lastSuccessDurationSeconds",
    "capsule_backup_last_success_duration_seconds",
    "Duration of the newest succeeded backup",
  ],
  ["failedRuns", "capsule_backup_failed_runs", "Failed or abandoned runs whose statefiles are in the bucket"],
  [
    "lastFailureTime",
    "capsule_backup_last_failure_timestamp_seconds",
    "Start time of the newest failed or abandoned run",
  ],
  ["runningRuns", "capsule_backup_running_runs", "Runs in progress (fresh heartbeat)"],
  [
    "lastVerificationTime",
    "capsule_verification_last_timestamp_seconds",
    "When the newest restore drill on the target's backups ran",
  ],
  [
    "lastVerificationSuccess",
    "capsule_verification_last_success",
    "1 if the newest restore drill verified its backup, 0 if it failed",
  ],
  [
    "newestVerified",
    "capsule_backup_newest_verified",
    "1 if the newest succeeded backup has been proven by a restore drill",
  ],
  [
    "consecutiveFailures",
    "capsule_backup_consecutive_failures",
    "Failed or abandoned runs since the newest succeeded backup",
  ],
  [
    "expectedIntervalSeconds",
    "capsule_backup_expected_interval_seconds",
    "Median gap between the target's recent scheduled runs, from their statefiles (needs two runs)",
  ],
];

const WAL_LABELS = ["cluster", "target"] as const;

export class DaemonMetrics {
  readonly registry = new Registry();

  private readonly targetGauges = TARGET_GAUGES.map(
    ([stat, name, help]) => [stat, this.gauge(name, help, ["cluster", "target", "engine"])] as const,
  );
  readonly corruptStatefiles = this.gauge(
    "capsule_backup_corrupt_statefiles",
    "Statefiles that cannot be read or parsed, per cluster",
    ["cluster"],
  );
  readonly bucketCheck = this.gauge(
    "capsule_bucket_check_last_success_timestamp_seconds",
    "When the bucket was last read successfully",
  );
  readonly bucketErrors = this.counter(
    "capsule_bucket_check_errors_total",
    "Failed reads of the bucket by the monitor",
  );

  readonly walLagSeconds = this.gauge(
    "capsule_wal_lag_seconds",
    "Seconds between now and the newest point a restore can reach (head.json coveredUntil), per pitr target",
    WAL_LABELS,
  );
  readonly walLagBytes = this.gauge(
    "capsule_wal_lag_bytes",
    "WAL bytes the server had written that are not yet in the bucket (serverLsn - archivedLsn)",
    WAL_LABELS,
  );
  readonly walHeadUpdated = this.gauge(
    "capsule_wal_head_updated_timestamp_seconds",
    "When the WAL streamer last wrote its head.json (its clock), per pitr target",
    WAL_LABELS,
  );

  readonly reconciles = this.counter(
    "capsule_reconcile_total",
    "Reconcile passes, by result (success, partial: some objects failed, error: the pass failed)",
    ["result"],
  );
  readonly reconcileErrors = this.counter(
    "capsule_reconcile_errors_total",
    "Errors during reconciliation, by what failed",
    ["operation"],
  );
  readonly reconcileWrites = this.counter(
    "capsule_reconcile_writes_total",
    "CronJob and Deployment writes made by the reconciler",
    ["verb"],
  );
  readonly reconcileDuration = new Histogram({
    name: "capsule_reconcile_duration_seconds",
    help: "Duration of reconcile passes",
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly reconcileLastSuccess = this.gauge(
    "capsule_reconcile_last_success_timestamp_seconds",
    "End of the last reconcile pass that completed without errors",
  );
  readonly managedCronJobs = this.gauge(
    "capsule_managed_cronjobs",
    "CronJobs the last reconcile pass wanted to exist",
  );
  readonly managedDeployments = this.gauge(
    "capsule_managed_deployments",
    "WAL streamer Deployments the last reconcile pass wanted to exist",
  );
  readonly skippedTargets = this.gauge(
    "capsule_skipped_targets",
    "CnvrgApp targets (or whole apps) skipped by the last reconcile pass",
  );
  readonly leader = this.gauge("capsule_leader", "1 while this replica holds the Lease");
  readonly requests = this.counter(
    "capsule_requests_total",
    "Bucket requests handled by the watcher, by action and outcome",
    ["action", "outcome"],
  );
  readonly requestErrors = this.counter(
    "capsule_request_errors_total",
    "Errors while handling bucket requests (retried on the next poll)",
  );

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const info = this.gauge(
      "capsule_build_info",
      "capsule's version, commit, build date and Node.js runtime; always 1",
      ["version", "commit", "date", "node"],
    );
    const { version, commit, date, node } = buildInfo;
    info.set({ version, commit, date, node }, 1);
    if (options.defaultMetrics ?? true)
      collectDefaultMetrics({ register: this.registry, prefix: "capsule_" });
  }

  /** Replaces every per-target backup series: targets that vanished from the bucket vanish from /metrics too. */
  setBackupStats(stats: readonly TargetBackupStats[], corrupt: ReadonlyMap<string, number>): void {
    for (const [, gauge] of this.targetGauges) gauge.reset();
    this.corruptStatefiles.reset();
    for (const s of stats) {
      const labels = { cluster: s.cluster, target: s.target, engine: s.engine };
      for (const [stat, gauge] of this.targetGauges) {
        const value = s[stat];
        if (value !== undefined) gauge.set(labels, value);
      }
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

  private gauge<T extends string>(name: string, help: string, labelNames: readonly T[] = []): Gauge<T> {
    return new Gauge({ name, help, labelNames, registers: [this.registry] });
  }

  private counter<T extends string>(name: string, help: string, labelNames: readonly T[] = []): Counter<T> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }
}
