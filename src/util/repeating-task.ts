/**
 * A round of work run now and again after each round ends, until stopped — the shape of every background loop of
 * the daemon (Lease campaign, bucket monitor, request watcher). Rounds never overlap; `stop()` waits for the round
 * in flight, so a caller can release resources after it. A round's rejection is handed to `onError`, never thrown.
 */
export class RepeatingTask {
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private stopped = true;

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
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.inFlight;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.inFlight = this.round()
        .catch(this.onError)
        .finally(() => {
          this.inFlight = undefined;
          this.schedule(this.intervalMs());
        });
    }, delayMs);
  }
}
