/**
 * `capsule start`: the three loops of docs/design.md §1 wired together.
 * - the status server runs on every replica, from start to stop;
 * - the bucket monitor (readiness, backup metrics) runs on every replica;
 * - the reconciler and the request watcher run only on the replica holding the Lease, started when it is won and
 *   stopped when it is lost. The watcher starts after the first successful reconcile: it needs the compiled
 *   CronJobs to build Jobs from.
 * Buckets: the default one (`--bucket`) and, unless disabled, each target's own, resolved from its live CronJob
 * (daemon/target-buckets.ts) before every bucket refresh. The leader runs one request watcher per distinct bucket.
 * `stop()` (SIGTERM) stops the leader's loops, releases the Lease so another replica takes over at once, stops the
 * monitor and closes the server.
 */
import type { AddressInfo } from "node:net";
import { messageOf } from "../domain/errors.js";
import { defined } from "../util/defined.js";
import { Events } from "../k8s/events.js";
import { KubeClient } from "../k8s/kube-client.js";
import { Leases } from "../k8s/leases.js";
import { Workloads } from "../k8s/workloads.js";
import type { Logger } from "../log.js";
import type { CronJobManifest } from "../compiler/cronjob.js";
import { backupCronJobs, restoreCronJobs } from "../reconciler/desired.js";
import { ReconcileLoop } from "../reconciler/loop.js";
import { Reconciler, type PassResult } from "../reconciler/reconciler.js";
import { RequestWatcher, type RestorePolicy } from "../requests/watcher.js";
import type { BackupStore } from "../storage/backup-store.js";
import { BucketSet } from "../storage/bucket-set.js";
import { readSecret } from "../k8s/secrets.js";
import { MANAGED_SELECTOR } from "../reconciler/reconciler.js";
import { resolveTargetBuckets } from "./target-buckets.js";
import { BucketMonitor } from "../status/bucket-monitor.js";
import { DaemonMetrics } from "../status/metrics.js";
import { StatusServer, type Readiness } from "../status/server.js";
import { LeaderElector } from "./leader.js";

/** Leadership without election (a single replica) never ends. */
const FOREVER = new AbortController().signal;

export interface DaemonConfig {
  /** Kubernetes access; required unless `statusOnly`. */
  readonly kube?: { readonly kubeconfig?: string; readonly requestTimeoutMs?: number };
  /** Serve the status API only: no reconciler, no watcher, no Lease (`capsule serve`). */
  readonly statusOnly?: boolean;
  readonly namespace?: string;
  readonly plansDir?: string;
  readonly image?: string;
  /** The default bucket (`--bucket`). */
  readonly store?: BackupStore;
  /**
   * Also read each target's own bucket, from the Secrets its CronJob's storage variables name. Needs Kubernetes.
   * @default true (unless statusOnly)
   */
  readonly targetBuckets?: boolean;
  readonly listen: { readonly host: string; readonly port: number };
  readonly token?: string;
  readonly allowRequests?: boolean;
  readonly resyncMs?: number;
  readonly debounceMs?: number;
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  readonly leaderElection?: boolean;
  readonly lease: {
    readonly name: string;
    readonly namespace: string;
    readonly durationMs?: number;
    readonly renewDeadlineMs?: number;
    readonly retryPeriodMs?: number;
  };
  readonly identity: string;
  readonly requestPollMs?: number;
  readonly bucketRefreshMs?: number;
  readonly restore?: RestorePolicy;
  /** Report skipped CnvrgApps as Kubernetes Events. @default true */
  readonly events?: boolean;
  readonly log: Logger;
  /** prom-client's process metrics. @default true */
  readonly processMetrics?: boolean;
}

export class Daemon {
  readonly metrics: DaemonMetrics;
  private readonly server: StatusServer;
  private readonly monitor: BucketMonitor | undefined;
  private readonly loop: ReconcileLoop | undefined;
  private readonly elector: LeaderElector | undefined;
  private readonly buckets: BucketSet;
  /** The leader's request watchers, one per distinct bucket. */
  private readonly watchers = new Map<BackupStore, RequestWatcher>();
  private workloads: Workloads | undefined;
  private readonly reportedProblems = new Set<string>();
  private lastPass: PassResult | undefined;
  private targets = new Map<string, CronJobManifest>();
  private restoreTargets = new Map<string, CronJobManifest>();
  private reconciledOnce = false;
  private leading = false;
  private leaderWork: Promise<void> = Promise.resolve();

  constructor(private readonly config: DaemonConfig) {
    const { log } = config;
    this.metrics = new DaemonMetrics({ defaultMetrics: config.processMetrics ?? true });
    this.buckets = new BucketSet(config.store);
    let kube: KubeClient | undefined;
    if (!config.statusOnly) {
      kube = new KubeClient(config.kube ?? {});
      const workloads = new Workloads(kube);
      this.workloads = workloads;
      const reconciler = new Reconciler({
        kube,
        workloads,
        ...(config.events !== false && { events: new Events(kube, config.identity) }),
        ...defined({ namespace: config.namespace, plansDir: config.plansDir, image: config.image }),
        log,
        metrics: this.metrics,
        // The fence: a pass in flight when the renew deadline passes starts no write, and its writes on the wire are
        // aborted.
        fence: () => (this.elector ? this.elector.leadership : FOREVER),
      });
      this.loop = new ReconcileLoop(reconciler, {
        kube,
        ...defined({
          namespace: config.namespace,
          resyncMs: config.resyncMs,
          debounceMs: config.debounceMs,
          initialBackoffMs: config.initialBackoffMs,
          maxBackoffMs: config.maxBackoffMs,
        }),
        log,
        onPass: (result) => this.passed(result, workloads),
      });
      if (config.leaderElection !== false) {
        this.elector = new LeaderElector({
          leases: new Leases(kube),
          namespace: config.lease.namespace,
          name: config.lease.name,
          identity: config.identity,
          ...defined({
            leaseDurationMs: config.lease.durationMs,
            renewDeadlineMs: config.lease.renewDeadlineMs,
            retryPeriodMs: config.lease.retryPeriodMs,
          }),
          log,
          onStartedLeading: () => this.lead(true),
          onStoppedLeading: () => this.lead(false),
        });
      }
    }
    const targetBuckets = kube !== undefined && config.targetBuckets !== false;
    if (config.store || targetBuckets) {
      this.monitor = new BucketMonitor({
        buckets: this.buckets,
        ...(config.store && { primary: config.store }),
        metrics: this.metrics,
        log,
        ...(targetBuckets && kube && { resolve: () => this.resolveBuckets(kube) }),
        ...(config.bucketRefreshMs !== undefined && { intervalMs: config.bucketRefreshMs }),
      });
    }
    this.server = new StatusServer({
      buckets: this.buckets,
      metrics: this.metrics,
      readiness: () => this.readiness(),
      log,
      ...defined({ token: config.token, allowRequests: config.allowRequests }),
      ...(!config.statusOnly && { hasTarget: (c: string, t: string) => this.targets.has(`${c}/${t}`) }),
    });
  }

  /** Leading, and (with leader election) still within the renew deadline. */
  get isLeader(): boolean {
    return this.leading && (this.elector?.isLeader ?? true);
  }

  /** The last reconcile pass this replica ran, if any. */
  get lastPassResult(): PassResult | undefined {
    return this.lastPass;
  }

  async start(): Promise<AddressInfo> {
    const address = await this.server.listen(this.config.listen.port, this.config.listen.host);
    this.config.log.info("status API listening", { address: `${address.address}:${address.port}` });
    this.monitor?.start();
    if (this.elector) this.elector.start();
    else if (this.loop) this.lead(true);
    return address;
  }

  async stop(): Promise<void> {
    const { log } = this.config;
    log.info("shutting down");
    if (this.elector) await this.elector.stop();
    else this.lead(false);
    await this.leaderWork;
    await this.monitor?.stop();
    await this.server.close();
    log.info("stopped");
  }

  /** The request watcher of the default bucket (or the first), once this replica runs one (tests poll it). */
  get requestWatcher(): RequestWatcher | undefined {
    return (this.config.store && this.watchers.get(this.config.store)) ?? this.watchers.values().next().value;
  }

  /** Which bucket each target writes to, from the live CronJobs; problems are logged once each. */
  private async resolveBuckets(kube: KubeClient): Promise<void> {
    const cronJobs = await this.workloads!.cronJobsWithTemplates(MANAGED_SELECTOR, this.config.namespace);
    const { buckets, problems, unresolved } = await resolveTargetBuckets(cronJobs, (namespace, name) =>
      readSecret(kube, namespace, name),
    );
    this.buckets.setTargets(buckets, unresolved);
    for (const problem of problems) {
      if (this.reportedProblems.has(problem)) continue;
      this.reportedProblems.add(problem);
      this.config.log.warn("target bucket not resolved; its backups are not read", { problem });
    }
    this.syncWatchers();
  }

  private lead(leading: boolean): void {
    this.leading = leading;
    this.metrics.leader.set(leading ? 1 : 0);
    this.leaderWork = this.leaderWork
      .then(async () => {
        if (leading) {
          this.loop?.start();
          return;
        }
        await this.loop?.stop();
        await Promise.all([...this.watchers.values()].map((w) => w.stop()));
        this.watchers.clear();
      })
      .catch((error: unknown) =>
        this.config.log.error("leader transition failed", { error: messageOf(error) }),
      );
  }

  private passed(result: PassResult | undefined, workloads: Workloads): void {
    if (!result) return;
    this.lastPass = result;
    if (result.failed === 0) this.reconciledOnce = true;
    this.targets = backupCronJobs(result.desired.cronJobs);
    this.restoreTargets = restoreCronJobs(result.desired.cronJobs);
    this.workloads = workloads;
    this.syncWatchers();
  }

  /**
   * On the leader, after its first pass: one watcher per bucket. The default bucket's polls every planned cluster
   * (requests may be filed there for any); a target's own bucket polls the clusters it serves.
   */
  private syncWatchers(): void {
    if (!this.leading || !this.lastPass || !this.workloads) return;
    const stores = new Set(this.buckets.stores());
    for (const [store, watcher] of this.watchers) {
      if (stores.has(store)) continue;
      this.watchers.delete(store);
      void watcher.stop();
    }
    for (const store of stores) {
      if (this.watchers.has(store)) continue;
      const primary = store === this.config.store;
      const watcher = new RequestWatcher({
        store,
        workloads: this.workloads,
        clusters: () => [
          ...this.buckets.clustersOf(store),
          ...(primary ? (this.lastPass?.desired.plans.map((p) => p.metadata.cluster) ?? []) : []),
        ],
        cronJobOf: (cluster, target) => this.targets.get(`${cluster}/${target}`),
        restoreCronJobOf: (cluster, target) => this.restoreTargets.get(`${cluster}/${target}`),
        identity: this.config.identity,
        log: this.config.log,
        metrics: this.metrics,
        ...(this.config.restore && { restore: this.config.restore }),
        ...(this.config.requestPollMs !== undefined && { pollMs: this.config.requestPollMs }),
      });
      this.watchers.set(store, watcher);
      watcher.start();
    }
  }

  private readiness(): Readiness {
    const checks: Record<string, string> = {};
    let ready = true;
    if (this.monitor) {
      if (this.monitor.healthy) checks["bucket"] = "ok";
      else {
        ready = false;
        checks["bucket"] = this.monitor.lastError ? `failing: ${this.monitor.lastError}` : "not checked yet";
      }
      // Another bucket failing (one installation's Secret) is shown, but does not take this replica out.
      for (const [bucket, error] of this.monitor.failures) checks[`bucket ${bucket}`] = `failing: ${error}`;
    } else checks["bucket"] = "not configured";
    if (this.loop) {
      if (!this.leading) checks["reconcile"] = "standby (another replica leads)";
      else if (this.reconciledOnce) checks["reconcile"] = "ok";
      else {
        ready = false;
        checks["reconcile"] = "waiting for the first successful pass";
      }
    }
    return { ready, checks };
  }
}
