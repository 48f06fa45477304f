/**
 * Reads the bucket on a timer: checks it answers (for /readyz), and turns every cluster's statefiles into the
 * per-target backup metrics. Also remembers which clusters the bucket holds, for the request watcher.
 */
import { RepeatingTask } from "../util/repeating-task.js";
import pLimit from "p-limit";
import { messageOf } from "../errors.js";
import type { Logger } from "../log.js";
import type { BackupStore } from "../storage/backup-store.js";
import type { DaemonMetrics, TargetBackupStats } from "./metrics.js";
import { targetStats } from "./views.js";

export interface BucketMonitorOptions {
  readonly store: BackupStore;
  readonly metrics: DaemonMetrics;
  readonly log: Logger;
  /** @default 120000 */
  readonly intervalMs?: number;
  /** Clusters read in parallel. @default 4 */
  readonly concurrency?: number;
}

export class BucketMonitor {
  private readonly task: RepeatingTask;
  /** The last check of the bucket succeeded. */
  healthy = false;
  /** When the bucket was last read successfully. */
  lastSuccess: Date | undefined;
  lastError: string | undefined;
  clusters: readonly string[] = [];

  constructor(private readonly options: BucketMonitorOptions) {
    this.task = new RepeatingTask(
      () => this.refresh(),
      () => options.intervalMs ?? 120_000,
    );
  }

  start(): void {
    this.task.start();
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  /** One check and metrics refresh; never rejects. */
  async refresh(): Promise<void> {
    const { store, metrics, log } = this.options;
    try {
      await store.objects.check();
      this.healthy = true;
      const clusters = await store.listClusters();
      const limit = pLimit(this.options.concurrency ?? 4);
      const all: TargetBackupStats[] = [];
      const corrupt = new Map<string, number>();
      await Promise.all(
        clusters.map((cluster) =>
          limit(async () => {
            const { stats, corrupt: bad } = targetStats(await store.list({ cluster }));
            all.push(...stats);
            if (bad > 0) corrupt.set(cluster, bad);
          }),
        ),
      );
      metrics.setBackupStats(all, corrupt);
      metrics.bucketCheck.set(Date.now() / 1000);
      this.clusters = clusters;
      this.lastSuccess = new Date();
      this.lastError = undefined;
    } catch (error) {
      this.healthy = false;
      this.lastError = messageOf(error);
      metrics.bucketErrors.inc();
      log.warn("bucket check failed", { bucket: store.objects.description, error: this.lastError });
    }
  }
}
