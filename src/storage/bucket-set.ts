/**
 * The buckets the daemon reads, and which cluster's backups are in which. A cnvrg installation names its own bucket
 * (its `cp-object-storage` Secret, even one per database), so one daemon may serve clusters whose backups live in
 * different buckets with different credentials; `--bucket` adds a default bucket for everything else.
 *
 * A cluster's backups are looked for in the buckets its targets write to (what the daemon resolved from their
 * CronJobs) and in every bucket where the last refresh found the cluster's folder — so the backups of a deleted
 * CnvrgApp stay visible while its bucket is still read. Stores are kept by identity (bucket, prefix, endpoint, key
 * id) across refreshes: their statefile caches survive, and two apps sharing a bucket share one store.
 */
import type { BackupStore } from "./backup-store.js";

export interface TargetBucket {
  readonly cluster: string;
  readonly target: string;
  /** Identity of the bucket: the same key means the same objects under the same credentials. */
  readonly key: string;
  /** Opens the store; called only for a key not open yet. */
  readonly open: () => BackupStore;
}

export class BucketSet {
  private readonly byKey = new Map<string, BackupStore>();
  /** cluster → target → store key */
  private targets = new Map<string, Map<string, string>>();
  /** cluster → keys of the stores where its folder was found */
  private found = new Map<string, Set<string>>();
  private static readonly FALLBACK = "\u0000fallback";

  constructor(private readonly fallback?: BackupStore) {
    if (fallback) this.byKey.set(BucketSet.FALLBACK, fallback);
  }

  /** One store for every cluster: `capsule serve --bucket`, tests. */
  static of(store: BackupStore): BucketSet {
    return new BucketSet(store);
  }

  /**
   * Replaces what the targets write to; stores no target or fallback uses any more are dropped. Targets in `keep`
   * could not be resolved this time (an API blip, a Secret being rotated): their last known bucket stays, so their
   * metrics and requests do not flap.
   */
  setTargets(
    resolved: readonly TargetBucket[],
    keep: ReadonlyArray<{ readonly cluster: string; readonly target: string }> = [],
  ): void {
    const targets = new Map<string, Map<string, string>>();
    for (const { cluster, target } of keep) {
      const key = this.targets.get(cluster)?.get(target);
      if (key === undefined) continue;
      let ofCluster = targets.get(cluster);
      if (!ofCluster) targets.set(cluster, (ofCluster = new Map<string, string>()));
      ofCluster.set(target, key);
    }
    for (const t of resolved) {
      if (!this.byKey.has(t.key)) this.byKey.set(t.key, t.open());
      let ofCluster = targets.get(t.cluster);
      if (!ofCluster) targets.set(t.cluster, (ofCluster = new Map<string, string>()));
      ofCluster.set(t.target, t.key);
    }
    this.targets = targets;
    const used = new Set([...targets.values()].flatMap((m) => [...m.values()]));
    for (const key of [...this.byKey.keys()]) {
      if (key !== BucketSet.FALLBACK && !used.has(key)) this.byKey.delete(key);
    }
    for (const keys of this.found.values())
      for (const key of keys) if (!this.byKey.has(key)) keys.delete(key);
  }

  /** Records where a refresh found each cluster's folder. */
  setFound(found: ReadonlyMap<BackupStore, readonly string[]>): void {
    const keyOf = new Map([...this.byKey].map(([key, store]) => [store, key]));
    const next = new Map<string, Set<string>>();
    for (const [store, clusters] of found) {
      const key = keyOf.get(store);
      if (key === undefined) continue;
      for (const cluster of clusters) {
        let keys = next.get(cluster);
        if (!keys) next.set(cluster, (keys = new Set()));
        keys.add(key);
      }
    }
    this.found = next;
  }

  get isEmpty(): boolean {
    return this.byKey.size === 0;
  }

  /** Every distinct store, the default one first. */
  stores(): BackupStore[] {
    return [...this.byKey.values()];
  }

  /** Where a cluster's backups may be: its targets' buckets and where it was found, else the default bucket. */
  storesOf(cluster: string): BackupStore[] {
    const keys = new Set([
      ...(this.targets.get(cluster)?.values() ?? []),
      ...(this.found.get(cluster) ?? []),
    ]);
    const stores = [...keys].flatMap((k) => this.byKey.get(k) ?? []);
    return stores.length > 0 ? stores : this.fallback ? [this.fallback] : [];
  }

  /** The bucket a target writes to (its requests go there too), else the cluster's first, else the default. */
  storeFor(cluster: string, target?: string): BackupStore | undefined {
    const key = target === undefined ? undefined : this.targets.get(cluster)?.get(target);
    return (key !== undefined ? this.byKey.get(key) : undefined) ?? this.storesOf(cluster)[0];
  }

  /** The clusters a store serves: those whose targets write to it, and those found in it. */
  clustersOf(store: BackupStore): string[] {
    const out = new Set<string>();
    for (const [cluster, targets] of this.targets)
      for (const key of targets.values()) if (this.byKey.get(key) === store) out.add(cluster);
    for (const [cluster, keys] of this.found)
      for (const key of keys) if (this.byKey.get(key) === store) out.add(cluster);
    return [...out].sort();
  }

  /** Every cluster known from targets or found in a bucket. */
  clusters(): string[] {
    return [...new Set([...this.targets.keys(), ...this.found.keys()])].sort();
  }
}
