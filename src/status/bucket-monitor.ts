/**
 * Reads the bucket on a timer: checks it answers (for /readyz), and turns every cluster's statefiles into the
 * per-target backup metrics. Also remembers which clusters the bucket holds, for the request watcher.
 */
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
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  private stopped = true;
  /** The last check of the bucket succeeded. */
  healthy = false;
  /** When the bucket was last read successfully. */
  lastSuccess: Date | undefined;
  lastError: string | undefined;
  clusters: readonly string[] = [];

  constructor(private readonly options: BucketMonitorOptions) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.refreshing;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.refreshing = this.refresh().finally(() => {
        this.refreshing = undefined;
        this.schedule(this.options.intervalMs ?? 120_000);
      });
    }, delayMs);
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
