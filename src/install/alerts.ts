/**
 * capsule's Prometheus alert rules, on the metrics the daemon exports (src/status/metrics.ts). One list feeds the
 * `PrometheusRule` of `capsule install --with-monitoring` and the plain rules file `deploy/capsule-alerts.yaml`.
 *
 * Every replica reads the same bucket, so backup series come once per replica: expressions collapse them with
 * `max by (cluster, target, engine)` before comparing. Thresholds live here, beside the rule that uses them.
 */

export interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  /** Prometheus duration the condition must hold. */
  readonly for: string;
  readonly labels: { readonly severity: "critical" | "warning" };
  readonly annotations: { readonly summary: string; readonly description: string };
}

export interface RuleGroup {
  readonly name: string;
  readonly rules: readonly AlertRule[];
}

const BY_TARGET = "by (cluster, target, engine)";
/** Used for "2× the interval" while a target has fewer than two scheduled runs to measure one from. */
export const DEFAULT_INTERVAL_SECONDS = 86_400;
/** Failed or abandoned runs in a row before paging: one can be a blip, the age alert covers slow failure. */
export const FAILURES_IN_A_ROW = 3;
/** A drill older than this is stale: weekly drills plus a day of slack. */
export const VERIFICATION_MAX_AGE_SECONDS = 8 * 86_400;
/** The daemon resyncs every 5 minutes (`--resync=5m`): six missed passes is no blip. */
export const RECONCILE_MAX_AGE_SECONDS = 1_800;
/**
 * PITR's goal is a recovery point of seconds (the streamer uploads at least every 10 s): a minute behind for five
 * minutes is no blip — a slow store, a saturated uplink, a streamer that cannot keep up.
 */
export const WAL_LAG_MAX_SECONDS = 60;
/**
 * A live streamer rewrites its head.json every few seconds; one not rewritten for 5 minutes (30 upload intervals)
 * means the streamer is down or cut off from the bucket, whatever the last lag figures said.
 */
export const WAL_HEAD_MAX_AGE_SECONDS = 300;
/** The bucket monitor reads every 2 minutes; past this the backup series are stale, whatever they say. */
export const BUCKET_READ_MAX_AGE_SECONDS = 900;

const targetLabels = "{{ $labels.cluster }}/{{ $labels.target }} ({{ $labels.engine }})";
const BY_WAL_TARGET = "by (cluster, target)";
const walTarget = "{{ $labels.cluster }}/{{ $labels.target }}";

/** A rule as written below: its severity and annotations flat, nested by `alertRule` the way Prometheus reads them. */
type RuleSpec = Pick<AlertRule, "alert" | "expr" | "for"> & AlertRule["labels"] & AlertRule["annotations"];

function alertRule({ alert, expr, for: holdFor, severity, summary, description }: RuleSpec): AlertRule {
  return { alert, expr, for: holdFor, labels: { severity }, annotations: { summary, description } };
}

const RULES: readonly RuleSpec[] = [
  {
    alert: "CapsuleBackupTooOld",
    expr: [
      `time() - max ${BY_TARGET} (capsule_backup_last_success_timestamp_seconds)`,
      `  > 2 * max ${BY_TARGET} (`,
      `    capsule_backup_expected_interval_seconds`,
      `      or capsule_backup_last_success_timestamp_seconds * 0 + ${DEFAULT_INTERVAL_SECONDS}`,
      `  )`,
    ].join("\n"),
    for: "10m",
    severity: "critical",
    summary: `No successful backup of ${targetLabels} for over twice its interval`,
    description:
      "The newest succeeded backup finished {{ $value | humanizeDuration }} ago, more than twice the gap " +
      `between the target's scheduled runs (${DEFAULT_INTERVAL_SECONDS / 3600} h assumed until two runs show it). ` +
      "Check the CronJob's recent Jobs and `capsule <engine> --list`.",
  },
  {
    alert: "CapsuleBackupNeverSucceeded",
    expr: [
      `max ${BY_TARGET} (capsule_backup_failed_runs) > 0`,
      `  unless max ${BY_TARGET} (capsule_backup_last_success_timestamp_seconds)`,
    ].join("\n"),
    for: "1h",
    severity: "critical",
    summary: `${targetLabels} has runs but no successful backup`,
    description:
      "Every run of this target in the bucket failed or was abandoned: there is nothing to restore.",
  },
  {
    alert: "CapsuleBackupFailuresInARow",
    expr: `max ${BY_TARGET} (capsule_backup_consecutive_failures) >= ${FAILURES_IN_A_ROW}`,
    for: "0m",
    severity: "warning",
    summary: `${targetLabels}: {{ $value }} backup runs failed in a row`,
    description:
      "The newest runs failed or were abandoned since the last success. `capsule <engine> --describe --id …` " +
      "shows each run's error.",
  },
  {
    alert: "CapsuleVerificationFailed",
    expr: `min ${BY_TARGET} (capsule_verification_last_success) == 0`,
    for: "0m",
    severity: "critical",
    summary: `The last restore drill of ${targetLabels} failed`,
    description:
      "A backup could not be restored and checked in a drill: it may not restore when needed. " +
      "`capsule <engine> --verify --id latest` repeats the drill.",
  },
  {
    alert: "CapsuleVerificationTooOld",
    expr: `time() - max ${BY_TARGET} (capsule_verification_last_timestamp_seconds) > ${VERIFICATION_MAX_AGE_SECONDS}`,
    for: "1h",
    severity: "warning",
    summary: `No restore drill of ${targetLabels} for {{ $value | humanizeDuration }}`,
    description: `The newest restore drill is older than ${VERIFICATION_MAX_AGE_SECONDS / 86_400} days; check the target's verify CronJob.`,
  },
  {
    alert: "CapsuleWalLagHigh",
    expr: `max ${BY_WAL_TARGET} (capsule_wal_lag_seconds) > ${WAL_LAG_MAX_SECONDS}`,
    for: "5m",
    severity: "critical",
    summary: `The newest restorable point of ${walTarget} is {{ $value | humanizeDuration }} old`,
    description:
      "The WAL streamer is behind: a restore to the latest point would lose that much. Check the streamer " +
      "Deployment's log (`kubectl logs deploy/capsule-…-wal`), capsule_wal_lag_bytes and the bucket.",
  },
  {
    alert: "CapsuleWalStreamStale",
    expr: `time() - max ${BY_WAL_TARGET} (capsule_wal_head_updated_timestamp_seconds) > ${WAL_HEAD_MAX_AGE_SECONDS}`,
    for: "5m",
    severity: "critical",
    summary: `The WAL streamer of ${walTarget} has not written its head for {{ $value | humanizeDuration }}`,
    description:
      "The streamer is down, stuck or cannot reach the bucket: no WAL is being archived, and the replication " +
      "slot keeps WAL piling up on the database server. Check the streamer Deployment's pod and log.",
  },
  {
    alert: "CapsuleNotReconciling",
    expr: `time() - max(capsule_reconcile_last_success_timestamp_seconds) > ${RECONCILE_MAX_AGE_SECONDS}`,
    for: "5m",
    severity: "warning",
    summary: "The capsule daemon has not completed a reconcile pass for {{ $value | humanizeDuration }}",
    description:
      "CronJobs no longer follow CnvrgApps and plans. Check the leader's log, capsule_reconcile_errors_total " +
      "and capsule_leader.",
  },
  {
    alert: "CapsuleDaemonDown",
    expr: "absent(capsule_leader)",
    for: "10m",
    severity: "critical",
    summary: "No capsule daemon is being scraped",
    description: "Without the daemon no CronJob is reconciled and none of the other capsule alerts can fire.",
  },
  {
    alert: "CapsuleBucketUnreadable",
    expr: `time() - max(capsule_bucket_check_last_success_timestamp_seconds) > ${BUCKET_READ_MAX_AGE_SECONDS}`,
    for: "5m",
    severity: "critical",
    summary: "capsule has not read its bucket for {{ $value | humanizeDuration }}",
    description:
      "The backup metrics are stale while the bucket cannot be read, and restores need the bucket. " +
      "Check /readyz and the daemon's log.",
  },
  {
    alert: "CapsuleCorruptStatefiles",
    expr: "max by (cluster) (capsule_backup_corrupt_statefiles) > 0",
    for: "1h",
    severity: "warning",
    summary: "{{ $value }} unreadable statefiles in cluster {{ $labels.cluster }}",
    description: "`capsule <engine> --check` lists them; their backups cannot be restored without repair.",
  },
];

export const ALERT_RULES: RuleGroup = { name: "capsule", rules: RULES.map(alertRule) };
