/**
 * A round of work run now and again after each round ends, until stopped — the shape of every background loop of
 * the daemon (Lease campaign, bucket monitor, request watcher, reconcile loop). Rounds never overlap; `stop()` waits
 * for the round in flight, so a caller can release resources after it. A round's rejection is handed to `onError`,
 * never thrown.
 */
export class RepeatingTask {
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  /** Set before the round is called, so a trigger from its synchronous start cannot start a second one. */
  private inRound = false;
  private stopped = true;
  /** A trigger that came during a round: the next round starts no later than this after it. */
  private triggeredDelayMs: number | undefined;

  constructor(
    private readonly round: () => Promise<void>,
    private readonly intervalMs: () => number,
    private readonly onError: (error: unknown) => void = () => undefined,
  ) {}

  get isStopped(): boolean {
    return this.stopped;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.triggeredDelayMs = undefined;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.inFlight;
  }

  /**
   * Runs the next round `delayMs` from now instead of when it was due. During a round it cannot start one beside it
   * (rounds never overlap), so the next round then starts at most `delayMs` after this one ends.
   */
  trigger(delayMs = 0): void {
    if (this.stopped) return;
    if (this.inRound) {
      this.triggeredDelayMs = Math.min(this.triggeredDelayMs ?? delayMs, delayMs);
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.schedule(delayMs);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // Triggers before the round starts are served by it.
      this.triggeredDelayMs = undefined;
      this.inRound = true;
      this.inFlight = this.round()
        .catch(this.onError)
        .finally(() => {
          this.inRound = false;
          this.inFlight = undefined;
          const interval = this.intervalMs();
          const triggered = this.triggeredDelayMs;
          this.triggeredDelayMs = undefined;
          this.schedule(triggered === undefined ? interval : Math.min(interval, triggered));
        });
    }, delayMs);
  }
}
