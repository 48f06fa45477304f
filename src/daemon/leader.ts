/**
 * Leader election over a coordination.k8s.io/v1 Lease, with client-go's rules:
 * - a candidate takes a Lease that is absent, released (no holder) or expired — expired meaning its record has not
 *   changed for `leaseDuration` *as observed by this process' own clock*, so clock skew between nodes cannot hand
 *   the Lease to two replicas;
 * - every write is conditional on the resourceVersion read, so of two candidates exactly one wins;
 * - the leader renews every `retryPeriod`, and leads only until `renewDeadline` after it *sent* its last successful
 *   renewal (the write landed no earlier, so the others cannot see the Lease expire before that + `leaseDuration`).
 *   When that moment passes it stops leading at once, by timer, even while a renewal hangs; `isLeader` checks the
 *   clock too, so a caller fencing its writes on it never writes late (renewDeadline < leaseDuration);
 * - every attempt (read and write) is aborted at that deadline, as client-go bounds it with a context, so a hung
 *   request can neither keep the replica leading nor block the next attempt until the client's request timeout;
 * - `release()` (SIGTERM) clears the holder so a successor need not wait for expiry.
 * Every duration is measured on `performance.now()`, never the wall clock: a clock stepped by NTP or a paused VM
 * would otherwise end a term at once, or stretch it past the moment another replica takes over (two leaders).
 * Only the Lease's own fields carry wall-clock times, for people reading it.
 */
import { RepeatingTask } from "../util/repeating-task.js";
import { messageOf } from "../domain/errors.js";
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
  readonly onStartedLeading: () => void;
  /** Called when leadership is lost or given up; the callee must stop leader-only work. */
  readonly onStoppedLeading: () => void;
}

export class LeaderElector {
  private readonly task: RepeatingTask;
  private leading = false;
  private observed: { record: LeaseRecord; at: number } | undefined;
  /** While leading: the moment leadership ends unless a renewal sent before it succeeds. */
  private leadingUntil = 0;
  private deadlineTimer: NodeJS.Timeout | undefined;
  /** Aborted the moment this term of leadership ends. */
  private term: AbortController | undefined;
  private readonly now = () => performance.now();
  private readonly renewDeadlineMs: number;

  constructor(private readonly options: LeaderElectionOptions) {
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    const leaseMs = options.leaseDurationMs ?? 15_000;
    const retryMs = options.retryPeriodMs ?? 2000;
    if (!(retryMs < this.renewDeadlineMs && this.renewDeadlineMs < leaseMs)) {
      throw new Error(
        `leader election needs retryPeriod < renewDeadline < leaseDuration (got ${retryMs} ms, ${this.renewDeadlineMs} ms, ${leaseMs} ms)`,
      );
    }
    this.task = new RepeatingTask(
      () => this.round(),
      () => options.retryPeriodMs ?? 2000,
    );
  }

  /** Leading, and the renew deadline has not passed (by the clock, not only by the timer). */
  get isLeader(): boolean {
    return this.leading && this.now() < this.leadingUntil;
  }

  /**
   * While leading: a signal aborted the moment leadership ends (renew deadline, lost Lease, stop), for requests the
   * leader has in flight. Undefined when not leading.
   */
  get leadership(): AbortSignal | undefined {
    return this.isLeader ? this.term?.signal : undefined;
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
    const sentAt = this.now();
    const deadline = this.leading ? this.leadingUntil : sentAt + this.renewDeadlineMs;
    const attempt = AbortSignal.timeout(Math.max(1, deadline - sentAt));
    try {
      const acquired = await this.tryAcquireOrRenew(attempt);
      if (this.task.isStopped) return;
      if (!acquired) {
        if (this.leading) {
          log.warn("lost the Lease to another replica", { holder: this.observed?.record.holderIdentity });
          this.setLeading(false);
        }
        return;
      }
      // Counted from when the request left: the write may have landed any time after that.
      const until = sentAt + this.renewDeadlineMs;
      if (this.now() >= until) {
        log.warn("the Lease was written after the renew deadline; not leading on it");
        this.stepDown();
        return;
      }
      this.leadingUntil = until;
      this.armDeadline();
      this.setLeading(true);
    } catch (error) {
      log.warn("Lease update failed", { error: messageOf(error), leading: this.leading });
      this.stepDown();
    }
  }

  /** Stops leading if the renew deadline has passed. */
  private stepDown(): void {
    if (!this.leading || this.now() < this.leadingUntil) return;
    this.options.log.error("could not renew the Lease within the renew deadline; stepping down", {
      renewDeadlineMs: this.renewDeadlineMs,
    });
    this.setLeading(false);
  }

  private armDeadline(): void {
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = setTimeout(() => this.stepDown(), Math.max(0, this.leadingUntil - this.now()));
    this.deadlineTimer.unref();
  }

  private setLeading(leading: boolean): void {
    if (leading === this.leading) return;
    this.leading = leading;
    if (leading) this.term = new AbortController();
    else {
      this.term?.abort(new Error("this replica stopped leading"));
      if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
      this.deadlineTimer = undefined;
    }
    const { log, identity, namespace, name } = this.options;
    log.info(leading ? "became leader" : "stopped leading", { identity, lease: `${namespace}/${name}` });
    if (leading) this.options.onStartedLeading();
    else this.options.onStoppedLeading();
  }

  private get leaseSeconds(): number {
    return Math.ceil((this.options.leaseDurationMs ?? 15_000) / 1000);
  }

  /** True when this replica holds the Lease after the call. */
  private async tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const { leases, namespace, name, identity } = this.options;
    const now = new Date();
    const current = await leases.get(namespace, name, signal);
    if (current) this.remember(current);
    const mine = current?.holderIdentity === identity;
    if (current && !mine && current.holderIdentity !== undefined && !this.expired(current)) return false;
    const record = {
      holderIdentity: identity,
      leaseDurationSeconds: this.leaseSeconds,
      acquireTime: mine ? (current.acquireTime ?? now) : now,
      renewTime: now,
      leaseTransitions: !current ? 0 : mine ? current.leaseTransitions : current.leaseTransitions + 1,
    };
    try {
      this.remember(
        current
          ? await leases.replace(namespace, name, record, current.resourceVersion, signal)
          : await leases.create(namespace, name, record, signal),
      );
      return true;
    } catch (error) {
      // Someone else wrote the Lease first: it is theirs this round.
      if (current ? isConflict(error) : isAlreadyExists(error)) return false;
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
    const seconds = record.leaseDurationSeconds ?? this.leaseSeconds;
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
          renewTime: new Date(),
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
