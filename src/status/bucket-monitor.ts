/**
 * Reads the buckets on a timer: checks each answers (for /readyz), and turns every cluster's statefiles into the
 * per-target backup metrics, and the WAL heads of its WAL-streaming targets into the WAL lag metrics (wal-lag.ts). Before each refresh it asks the daemon to re-resolve which bucket each target writes
 * to (per-CnvrgApp buckets), and afterwards records where each cluster's folder was found.
 *
 * Readiness follows the default bucket (`--bucket`) when there is one — one installation's broken bucket Secret
 * must not take the status API of every other one out of the Service — and otherwise whether any bucket answered.
 * Every failing bucket is named in /readyz and logged.
 */
import { RepeatingTask } from "../util/repeating-task.js";
import pLimit from "p-limit";
import { messageOf } from "../domain/errors.js";
import type { Logger } from "../log.js";
import type { BackupStore } from "../storage/backup-store.js";
import type { BucketSet } from "../storage/bucket-set.js";
import type { DaemonMetrics, TargetBackupStats } from "./metrics.js";
import { targetStats } from "./views.js";
import { isWalLag, readWalLags, type WalLag } from "./wal-lag.js";
import { walStreamingEngines } from "../engines/registry.js";

export interface BucketMonitorOptions {
  readonly buckets: BucketSet;
  /** The default bucket, if any: readiness follows it. */
  readonly primary?: BackupStore;
  readonly metrics: DaemonMetrics;
  readonly log: Logger;
  /** Re-resolves the targets' buckets before each refresh; a failure keeps the previous ones. */
  readonly resolve?: () => Promise<void>;
  readonly now?: () => Date;
  /** @default 120000 */
  readonly intervalMs?: number;
  /** Clusters read in parallel. @default 4 */
  readonly concurrency?: number;
}

export class BucketMonitor {
  private readonly task: RepeatingTask;
  /** The last check passed (see the readiness rule above). */
  healthy = false;
  /** When the buckets were last read with no failure. */
  lastSuccess: Date | undefined;
  /** The first failure of the last refresh, naming its bucket. */
  lastError: string | undefined;
  /** Every bucket that failed in the last refresh → why. */
  failures: ReadonlyMap<string, string> = new Map();

  constructor(private readonly options: BucketMonitorOptions) {
    this.task = new RepeatingTask(
      () => this.refresh(),
      () => options.intervalMs ?? 120_000,
    );
  }

  /** Clusters found in the buckets or targeted by a CronJob. */
  get clusters(): readonly string[] {
    return this.options.buckets.clusters();
  }

  start(): void {
    this.task.start();
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  /** One check and metrics refresh; never rejects. */
  async refresh(): Promise<void> {
    const { buckets, metrics, log } = this.options;
    if (this.options.resolve) {
      try {
        await this.options.resolve();
      } catch (error) {
        log.warn("bucket resolution failed; keeping the previous buckets", { error: messageOf(error) });
      }
    }
    const limit = pLimit(this.options.concurrency ?? 4);
    const all: TargetBackupStats[] = [];
    const walLags: WalLag[] = [];
    const now = this.options.now ?? (() => new Date());
    const corrupt = new Map<string, number>();
    const found = new Map<BackupStore, string[]>();
    const failures = new Map<string, string>();
    /** cluster/engine/target read from an earlier store: a shared bucket must not count twice. */
    const seen = new Set<string>();
    const walEngines = new Set<string>(walStreamingEngines());
    for (const store of buckets.stores()) {
      const where = store.description;
      try {
        await store.check();
        const clusters = await store.listClusters();
        found.set(store, clusters);
        const lists = await Promise.all(clusters.map((cluster) => limit(() => store.list({ cluster }))));
        for (const [i, entries] of lists.entries()) {
          const { stats, corrupt: bad } = targetStats(entries);
          const streamed: string[] = [];
          for (const s of stats) {
            const id = `${s.cluster}/${s.engine}/${s.target}`;
            if (seen.has(id)) continue;
            seen.add(id);
            all.push(s);
            // A pitr target is one of a WAL-streaming engine with a head; reading a head is one small GET.
            if (walEngines.has(s.engine)) streamed.push(s.target);
          }
          if (bad > 0) corrupt.set(clusters[i]!, (corrupt.get(clusters[i]!) ?? 0) + bad);
          for (const lag of await limit(() => readWalLags(store, clusters[i]!, streamed, now))) {
            if (isWalLag(lag)) walLags.push(lag);
            else
              log.warn("WAL head unreadable", { cluster: lag.cluster, target: lag.target, error: lag.error });
          }
        }
      } catch (error) {
        failures.set(where, messageOf(error));
        metrics.bucketErrors.inc();
        log.warn("bucket check failed", { bucket: where, error: messageOf(error) });
      }
    }
    buckets.setFound(found);
    metrics.setBackupStats(all, corrupt);
    metrics.setWalLags(walLags);
    this.failures = failures;
    this.lastError = failures.size > 0 ? [...failures].map(([b, e]) => `${b}: ${e}`)[0] : undefined;
    const primary = this.options.primary;
    this.healthy = primary
      ? found.has(primary)
      : found.size > 0 || (buckets.stores().length === 0 && this.options.resolve !== undefined);
    if (failures.size === 0) {
      metrics.bucketCheck.set(Date.now() / 1000);
      this.lastSuccess = new Date();
    }
  }
}
