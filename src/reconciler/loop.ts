/**
 * The control loop around `Reconciler.pass()`: one pass at a time; another pass when a CnvrgApp changes (watch,
 * debounced), on a resync timer with jitter, and after a failure with exponential backoff. Nothing a pass throws
 * stops the loop. The watch is only a trigger — every pass relists — so a missed event costs at most one resync
 * interval, and a watch that ends (server timeout, 410 Gone, network) is simply restarted.
 */
import { messageOf } from "../domain/errors.js";
import { watchCnvrgApps } from "../k8s/cnvrgapps.js";
import type { KubeClient } from "../k8s/kube-client.js";
import type { Logger } from "../log.js";
import { defined } from "../util/defined.js";
import { RepeatingTask } from "../util/repeating-task.js";
import type { PassResult, Reconciler } from "./reconciler.js";

export interface LoopOptions {
  /** Full resync period. @default 300000 (5 min) */
  readonly resyncMs?: number;
  /** Each resync is spread by ± this fraction, so replicas and restarts do not fire together. @default 0.1 */
  readonly jitter?: number;
  /** Changes arriving within this window share one pass. @default 1000 */
  readonly debounceMs?: number;
  /** First retry after a failed pass; doubled per failure up to `maxBackoffMs`. @default 1000 */
  readonly initialBackoffMs?: number;
  /** @default 60000 */
  readonly maxBackoffMs?: number;
  /** Watch CnvrgApps between resyncs (with `kube`). @default true */
  readonly watch?: boolean;
  /** The server closes each watch after this; it is then restarted. @default 300 */
  readonly watchTimeoutSeconds?: number;
  readonly kube?: KubeClient;
  readonly namespace?: string;
  readonly log: Logger;
  readonly random?: () => number;
  /** Told about every pass, good or bad. */
  readonly onPass?: (result: PassResult | undefined, error?: unknown) => void;
}

export class ReconcileLoop {
  private readonly task: RepeatingTask;
  /** When the next pass is due, as the last pass decided: a resync, or a backoff after a failure. */
  private nextDelayMs = 0;
  private failures = 0;
  private watchStop: (() => void) | undefined;
  private watchVersion: string | undefined;
  private watchTimer: NodeJS.Timeout | undefined;
  private watchFailures = 0;
  private readonly random: () => number;
  /** Passes run so far (for tests and metrics). */
  passes = 0;

  constructor(
    private readonly reconciler: Reconciler,
    private readonly options: LoopOptions,
  ) {
    this.random = options.random ?? Math.random;
    this.task = new RepeatingTask(
      () => this.runPass(),
      () => this.nextDelayMs,
    );
  }

  private get stopped(): boolean {
    return this.task.isStopped;
  }

  start(): void {
    this.task.start();
  }

  /** Stops timers and the watch, and waits for a pass in flight to end. */
  async stop(): Promise<void> {
    const stopped = this.task.stop();
    if (this.watchTimer) clearTimeout(this.watchTimer);
    this.watchTimer = undefined;
    this.watchStop?.();
    this.watchStop = undefined;
    await stopped;
  }

  /** Asks for a pass soon (debounced); one in flight is followed by another. */
  trigger(reason: string): void {
    if (this.stopped) return;
    this.options.log.debug("reconcile requested", { reason });
    this.task.trigger(this.options.debounceMs ?? 1000);
  }

  private async runPass(): Promise<void> {
    const { log } = this.options;
    try {
      const result = await this.reconciler.pass();
      this.passes++;
      log.info("reconciled", {
        created: result.created,
        replaced: result.replaced,
        deleted: result.deleted,
        unchanged: result.unchanged,
        held: result.held,
        failed: result.failed,
        fenced: result.fenced,
        skipped: result.skipped,
      });
      this.options.onPass?.(result);
      if (result.failed > 0) this.nextDelayMs = this.backoff();
      else {
        this.failures = 0;
        this.nextDelayMs = this.resyncDelay();
      }
      this.ensureWatch(result.resourceVersion);
    } catch (error) {
      this.passes++;
      log.error("reconcile failed", { error: messageOf(error) });
      this.options.onPass?.(undefined, error);
      this.nextDelayMs = this.backoff();
    }
  }

  private resyncDelay(): number {
    const base = this.options.resyncMs ?? 300_000;
    const jitter = this.options.jitter ?? 0.1;
    return Math.max(0, Math.round(base * (1 + jitter * (2 * this.random() - 1))));
  }

  private backoff(): number {
    this.failures++;
    return this.backoffFor(this.failures);
  }

  private backoffFor(failures: number): number {
    const initial = this.options.initialBackoffMs ?? 1000;
    const max = this.options.maxBackoffMs ?? 60_000;
    const base = Math.min(max, initial * 2 ** Math.min(failures - 1, 30));
    // Full jitter on the upper half, so a fleet that failed together does not retry together.
    return Math.round(base / 2 + (base / 2) * this.random());
  }

  /** Starts the watch from the last list's version, unless one is running. */
  private ensureWatch(resourceVersion: string | undefined): void {
    if (this.stopped || this.watchStop || this.watchTimer || this.options.watch === false) return;
    const kube = this.options.kube;
    if (!kube) return;
    this.watchVersion = resourceVersion;
    this.startWatch(kube);
  }

  private startWatch(kube: KubeClient): void {
    const { log } = this.options;
    const session: { stopped: boolean; stop?: () => void } = { stopped: false };
    const stopSession = () => {
      session.stopped = true;
      session.stop?.();
    };
    this.watchStop = stopSession;
    const ended = () => {
      if (this.watchStop === stopSession) this.watchStop = undefined;
      return this.stopped || session.stopped;
    };
    watchCnvrgApps(
      kube,
      {
        ...defined({ namespace: this.options.namespace, resourceVersion: this.watchVersion }),
        timeoutSeconds: this.options.watchTimeoutSeconds ?? 300,
      },
      {
        onEvent: (type, resourceVersion) => {
          if (resourceVersion !== undefined) this.watchVersion = resourceVersion;
          this.watchFailures = 0;
          if (type !== "BOOKMARK") this.trigger(`CnvrgApp ${type.toLowerCase()}`);
        },
        onEnd: ({ expired, error }) => {
          if (ended()) return;
          if (expired) {
            // The history we asked for is gone: relist (the pass restarts the watch from its fresh version).
            log.info("CnvrgApp watch expired; relisting");
            this.watchVersion = undefined;
            this.trigger("watch expired");
            return;
          }
          if (error) {
            this.watchFailures++;
            log.warn("CnvrgApp watch failed", { error: messageOf(error) });
          }
          const delay = error ? this.backoffFor(this.watchFailures) : 0;
          this.watchTimer = setTimeout(() => {
            this.watchTimer = undefined;
            if (!this.stopped && !this.watchStop) this.startWatch(kube);
          }, delay);
        },
      },
    )
      .then((stopWatch) => {
        session.stop = stopWatch;
        if (session.stopped) stopWatch();
      })
      .catch((error: unknown) => {
        log.warn("cannot start CnvrgApp watch", { error: messageOf(error) });
        ended();
      });
  }
}
