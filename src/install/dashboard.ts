/**
 * The Grafana dashboard for capsule, on the same metrics as the alert rules: per cluster and target, the age of the
 * last good backup, its size and duration over time, failures, restore drills; then the daemon (reconcile, bucket
 * reads, leadership); then the WAL lag of pitr targets. Plain dashboard JSON (schemaVersion 39), importable by hand (`deploy/grafana-dashboard.json`)
 * or through Grafana's dashboard sidecar (the ConfigMap of `capsule install --with-monitoring`).
 */

export interface DashboardTarget {
  readonly expr: string;
  readonly legendFormat: string;
  readonly refId: string;
}

interface Panel {
  readonly id: number;
  readonly type: "stat" | "timeseries" | "table";
  readonly title: string;
  readonly description: string;
  readonly gridPos: { h: number; w: number; x: number; y: number };
  readonly datasource: { type: "prometheus"; uid: "${datasource}" };
  readonly targets: readonly DashboardTarget[];
  readonly fieldConfig: { defaults: Record<string, unknown>; overrides: [] };
  readonly options: Record<string, unknown>;
}

/** Panel matchers: the dashboard's cluster and target choices. */
const SELECTED = 'cluster=~"$cluster", target=~"$target"';
const BY_TARGET = "by (cluster, target, engine)";
/** WAL series carry no engine: only PostgreSQL streams WAL. */
const BY_WAL_TARGET = "by (cluster, target)";
const TARGET_LEGEND = "{{cluster}}/{{target}}";

const DATASOURCE = { type: "prometheus", uid: "${datasource}" } as const;
/** The top row's stat panels: the newest value per target, on a background coloured by its threshold. */
function statusStat(...steps: Array<[number | null, string]>) {
  return {
    thresholds: { mode: "absolute", steps: steps.map(([value, color]) => ({ color, value })) },
    options: {
      reduceOptions: { calcs: ["lastNotNull"] },
      colorMode: "background",
      textMode: "value_and_name",
    },
  };
}

/** A per-target series of the selected clusters and targets, collapsed over the replicas that all export it. */
const perTarget = (how: "max" | "min", metric: string, by = BY_TARGET) =>
  `${how} ${by} (${metric}{${SELECTED}})`;

/** A panel; its id is its place in the dashboard's list. */
function panel(
  type: Panel["type"],
  title: string,
  description: string,
  gridPos: Panel["gridPos"],
  unit: string,
  exprs: ReadonlyArray<[expr: string, legend: string]>,
  extra: { thresholds?: Record<string, unknown>; options?: Record<string, unknown> } = {},
): Omit<Panel, "id"> {
  return {
    type,
    title,
    description,
    gridPos,
    datasource: DATASOURCE,
    targets: exprs.map(([expr, legendFormat], i) => ({
      expr,
      legendFormat,
      refId: String.fromCharCode(65 + i),
    })),
    fieldConfig: {
      defaults: {
        unit,
        ...(extra.thresholds && { thresholds: extra.thresholds, color: { mode: "thresholds" } }),
      },
      overrides: [],
    },
    options: extra.options ?? {},
  };
}

export function grafanaDashboard(): Record<string, unknown> {
  const panels: Panel[] = [
    panel(
      "stat",
      "Time since the last good backup",
      "Per target: now minus the finish of the newest succeeded backup.",
      { h: 6, w: 12, x: 0, y: 0 },
      "s",
      [[`time() - ${perTarget("max", "capsule_backup_last_success_timestamp_seconds")}`, TARGET_LEGEND]],
      statusStat([null, "green"], [86_400, "orange"], [172_800, "red"]),
    ),
    panel(
      "stat",
      "Last restore drill",
      "1: the newest drill restored and checked its backup; 0: it failed.",
      { h: 6, w: 6, x: 12, y: 0 },
      "bool_yes_no",
      [[perTarget("min", "capsule_verification_last_success"), TARGET_LEGEND]],
      statusStat([null, "red"], [1, "green"]),
    ),
    panel(
      "stat",
      "Failures in a row",
      "Failed or abandoned runs since the newest succeeded backup.",
      { h: 6, w: 6, x: 18, y: 0 },
      "none",
      [[perTarget("max", "capsule_backup_consecutive_failures"), TARGET_LEGEND]],
      statusStat([null, "green"], [1, "orange"], [3, "red"]),
    ),
    panel(
      "timeseries",
      "Backup size",
      "Artifact size of the newest succeeded backup, over time.",
      { h: 8, w: 12, x: 0, y: 6 },
      "bytes",
      [[perTarget("max", "capsule_backup_last_success_size_bytes"), TARGET_LEGEND]],
    ),
    panel(
      "timeseries",
      "Backup duration",
      "Duration of the newest succeeded backup, over time.",
      { h: 8, w: 12, x: 12, y: 6 },
      "s",
      [[perTarget("max", "capsule_backup_last_success_duration_seconds"), TARGET_LEGEND]],
    ),
    panel(
      "timeseries",
      "Age of the last backup and of the last drill",
      "Compared with twice the observed interval between scheduled runs (the alert threshold).",
      { h: 8, w: 12, x: 0, y: 14 },
      "s",
      [
        [
          `time() - ${perTarget("max", "capsule_backup_last_success_timestamp_seconds")}`,
          `backup ${TARGET_LEGEND}`,
        ],
        [`2 * ${perTarget("max", "capsule_backup_expected_interval_seconds")}`, `threshold ${TARGET_LEGEND}`],
        [
          `time() - ${perTarget("max", "capsule_verification_last_timestamp_seconds")}`,
          `drill ${TARGET_LEGEND}`,
        ],
      ],
    ),
    panel(
      "timeseries",
      "Failed and running runs in the bucket",
      "Failed or abandoned runs whose statefiles are kept, and runs in progress.",
      { h: 8, w: 12, x: 12, y: 14 },
      "none",
      [
        [perTarget("max", "capsule_backup_failed_runs"), `failed ${TARGET_LEGEND}`],
        [perTarget("max", "capsule_backup_running_runs"), `running ${TARGET_LEGEND}`],
      ],
    ),
    panel(
      "timeseries",
      "Reconcile passes",
      "Passes per minute by result, and CronJob writes; a healthy idle daemon writes nothing.",
      { h: 8, w: 8, x: 0, y: 22 },
      "none",
      [
        ["sum by (result) (rate(capsule_reconcile_total[5m])) * 60", "{{result}}"],
        ["sum by (verb) (rate(capsule_reconcile_writes_total[5m])) * 60", "write {{verb}}"],
      ],
    ),
    panel(
      "timeseries",
      "Reconcile duration (p95)",
      "95th percentile of a reconcile pass.",
      { h: 8, w: 8, x: 8, y: 22 },
      "s",
      [
        [
          "histogram_quantile(0.95, sum by (le) (rate(capsule_reconcile_duration_seconds_bucket[5m])))",
          "p95",
        ],
      ],
    ),
    panel(
      "stat",
      "Daemon",
      "Seconds since the last good reconcile pass and bucket read; replicas holding the Lease; managed CronJobs.",
      { h: 8, w: 8, x: 16, y: 22 },
      "none",
      [
        ["time() - max(capsule_reconcile_last_success_timestamp_seconds)", "since reconcile (s)"],
        ["time() - max(capsule_bucket_check_last_success_timestamp_seconds)", "since bucket read (s)"],
        ["sum(capsule_leader)", "leaders"],
        ["max(capsule_managed_cronjobs)", "CronJobs"],
        ['sum by (cluster) (capsule_backup_corrupt_statefiles{cluster=~"$cluster"})', "corrupt {{cluster}}"],
      ],
      { options: { reduceOptions: { calcs: ["lastNotNull"] }, textMode: "value_and_name" } },
    ),
    panel(
      "timeseries",
      "WAL lag (pitr targets)",
      "How old the newest restorable point is (now − head.json coveredUntil), and how long ago the streamer last " +
        "wrote its head; the alerts fire past 60 s of lag and 300 s of head age.",
      { h: 8, w: 12, x: 0, y: 30 },
      "s",
      [
        [perTarget("max", "capsule_wal_lag_seconds", BY_WAL_TARGET), `lag ${TARGET_LEGEND}`],
        [
          `time() - ${perTarget("max", "capsule_wal_head_updated_timestamp_seconds", BY_WAL_TARGET)}`,
          `head age ${TARGET_LEGEND}`,
        ],
      ],
    ),
    panel(
      "timeseries",
      "WAL not yet in the bucket (pitr targets)",
      "serverLsn − archivedLsn from the streamer's head.json: WAL the server wrote that the bucket does not hold yet.",
      { h: 8, w: 12, x: 12, y: 30 },
      "bytes",
      [[perTarget("max", "capsule_wal_lag_bytes", BY_WAL_TARGET), TARGET_LEGEND]],
    ),
  ].map((p, i) => ({ id: i + 1, ...p }));
  const variable = (name: string, query: string) => ({
    name,
    label: name,
    type: "query",
    datasource: DATASOURCE,
    query: { query, refId: name },
    definition: query,
    includeAll: true,
    multi: true,
    allValue: ".*",
    current: { selected: true, text: ["All"], value: ["$__all"] },
    refresh: 2,
    sort: 1,
  });
  return {
    title: "capsule backups",
    uid: "capsule-backups",
    description: "Backups, restore drills and the capsule daemon, from capsule's /metrics.",
    tags: ["capsule", "backup"],
    timezone: "utc",
    schemaVersion: 39,
    version: 1,
    editable: true,
    graphTooltip: 1,
    refresh: "1m",
    time: { from: "now-7d", to: "now" },
    templating: {
      list: [
        {
          name: "datasource",
          label: "Prometheus",
          type: "datasource",
          query: "prometheus",
          current: {},
          hide: 0,
        },
        variable("cluster", "label_values(capsule_backup_last_success_timestamp_seconds, cluster)"),
        variable(
          "target",
          'label_values(capsule_backup_last_success_timestamp_seconds{cluster=~"$cluster"}, target)',
        ),
      ],
    },
    annotations: { list: [] },
    panels,
  };
}

/** Every PromQL expression the dashboard's panels run, for the test that checks them against /metrics. */
export function dashboardExpressions(dashboard = grafanaDashboard()): string[] {
  return (dashboard["panels"] as Panel[]).flatMap((p) => p.targets.map((t) => t.expr));
}
