/**
 * Leader election over a coordination.k8s.io/v1 Lease, with client-go's rules:
 * - a candidate takes a Lease that is absent, released (no holder) or expired — expired meaning its record has not
 *   changed for `leaseDuration` *as observed by this process' own clock*, so clock skew between nodes cannot hand
 *   the Lease to two replicas;
 * - every write is conditional on the resourceVersion read, so of two candidates exactly one wins;
 * - the leader renews every `retryPeriod`; if it cannot renew within `renewDeadline` it stops leading before the
 *   Lease can expire for the others (renewDeadline < leaseDuration);
 * - `release()` (SIGTERM) clears the holder so a successor need not wait for expiry.
 */
import { RepeatingTask } from "../util/repeating-task.js";
import { messageOf } from "../errors.js";
import { isAlreadyExists, isConflict } from "../k8s/kube-client.js";
import type { LeaseRecord, Leases } from "../k8s/leases.js";
import type { Logger } from "../log.js";

export interface LeaderElectionOptions {
  readonly leases: Leases;
  readonly namespace: string;
  readonly name: string;
  /** This replica's identity (the pod name). */
  readonly identity: string;
  /** @default 15000 */
  readonly leaseDurationMs?: number;
  /** @default 10000 */
  readonly renewDeadlineMs?: number;
  /** @default 2000 */
  readonly retryPeriodMs?: number;
  readonly log: Logger;
  readonly now?: () => number;
  readonly onStartedLeading: () => void;
  /** Called when leadership is lost or given up; the callee must stop leader-only work. */
  readonly onStoppedLeading: () => void;
}

export class LeaderElector {
  private readonly task: RepeatingTask;
  private leading = false;
  private observed: { record: LeaseRecord; at: number } | undefined;
  private lastRenew = 0;
  private readonly now: () => number;

  constructor(private readonly options: LeaderElectionOptions) {
    this.now = options.now ?? Date.now;
    this.task = new RepeatingTask(
      () => this.round(),
      () => options.retryPeriodMs ?? 2000,
    );
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.task.start();
  }

  /** Stops campaigning; a leader releases the Lease (best effort) and stops leading. */
  async stop(): Promise<void> {
    await this.task.stop();
    if (this.leading) {
      await this.release();
      this.setLeading(false);
    }
  }

  private async round(): Promise<void> {
    const { log } = this.options;
    try {
      const acquired = await this.tryAcquireOrRenew();
      if (this.task.isStopped) return;
      if (acquired) {
        this.lastRenew = this.now();
        this.setLeading(true);
      } else if (this.leading) {
        log.warn("lost the Lease to another replica", { holder: this.observed?.record.holderIdentity });
        this.setLeading(false);
      }
    } catch (error) {
      log.warn("Lease update failed", { error: messageOf(error), leading: this.leading });
      if (this.leading && this.now() - this.lastRenew > (this.options.renewDeadlineMs ?? 10_000)) {
        log.error("could not renew the Lease in time; stepping down");
        this.setLeading(false);
      }
    }
  }

  private setLeading(leading: boolean): void {
    if (leading === this.leading) return;
    this.leading = leading;
    const { log, identity, namespace, name } = this.options;
    if (leading) {
      log.info("became leader", { identity, lease: `${namespace}/${name}` });
      this.options.onStartedLeading();
    } else {
      log.info("stopped leading", { identity, lease: `${namespace}/${name}` });
      this.options.onStoppedLeading();
    }
  }

  /** True when this replica holds the Lease after the call. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const { leases, namespace, name, identity } = this.options;
    const durationSeconds = Math.ceil((this.options.leaseDurationMs ?? 15_000) / 1000);
    const now = new Date(this.now());
    const current = await leases.get(namespace, name);
    if (!current) {
      try {
        this.remember(
          await leases.create(namespace, name, {
            holderIdentity: identity,
            leaseDurationSeconds: durationSeconds,
            acquireTime: now,
            renewTime: now,
            leaseTransitions: 0,
          }),
        );
        return true;
      } catch (error) {
        if (isAlreadyExists(error)) return false;
        throw error;
      }
    }
    this.remember(current);
    const holder = current.holderIdentity;
    const mine = holder === identity;
    if (!mine && holder !== undefined && !this.expired(current)) return false;
    try {
      this.remember(
        await leases.replace(
          namespace,
          name,
          {
            holderIdentity: identity,
            leaseDurationSeconds: durationSeconds,
            acquireTime: mine ? (current.acquireTime ?? now) : now,
            renewTime: now,
            leaseTransitions: mine ? current.leaseTransitions : current.leaseTransitions + 1,
          },
          current.resourceVersion,
        ),
      );
      return true;
    } catch (error) {
      if (isConflict(error)) return false;
      throw error;
    }
  }

  /** Notes when the record last changed, by our own clock. */
  private remember(record: LeaseRecord): void {
    if (this.observed?.record.resourceVersion !== record.resourceVersion) {
      this.observed = { record, at: this.now() };
    }
  }

  private expired(record: LeaseRecord): boolean {
    const seconds = record.leaseDurationSeconds ?? Math.ceil((this.options.leaseDurationMs ?? 15_000) / 1000);
    const observed = this.observed;
    const since =
      observed && observed.record.resourceVersion === record.resourceVersion ? observed.at : this.now();
    return this.now() - since > seconds * 1000;
  }

  /** Clears the holder so another replica can take over at once. */
  private async release(): Promise<void> {
    const { leases, namespace, name, identity, log } = this.options;
    try {
      const current = await leases.get(namespace, name);
      if (!current || current.holderIdentity !== identity) return;
      await leases.replace(
        namespace,
        name,
        {
          holderIdentity: undefined,
          leaseDurationSeconds: 1,
          acquireTime: undefined,
          renewTime: new Date(this.now()),
          leaseTransitions: current.leaseTransitions,
        },
        current.resourceVersion,
      );
      log.info("released the Lease", { identity });
    } catch (error) {
      log.warn("cannot release the Lease", { error: messageOf(error) });
    }
  }
}
