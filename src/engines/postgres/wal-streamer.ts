/**
 * `capsule pg --stream-wal`: PostgreSQL's WAL, streamed over a physical replication slot into a `WalSink`, as
 * pg_receivewal does into a directory (docs/adr/0021). Each segment is assembled in memory and stored when
 * complete; the segment in progress is stored as a partial every upload interval when new bytes came, so a commit
 * is in the bucket within seconds under any load. After each durable upload the head is written, and only then is
 * the flush position confirmed to the server: the slot keeps every byte the bucket does not hold yet.
 *
 * While an upload is pending the socket is not read (the server waits; memory stays at a few segments); a store or
 * server that goes away is retried with backoff and said once, when it goes and when it comes back.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { CapsuleError, ErrorCode, messageOf } from "../../domain/errors.js";
import {
  formatLsn,
  type Lsn,
  parseLsn,
  segmentOf,
  segmentStart,
  walFileName,
  type WalHead,
  type WalSink,
} from "../../domain/wal.js";
import type { StreamLog } from "../engine.js";
import { describeConnection, type PgConnection } from "./connection.js";
import type { ServerCopyMessage } from "./replication-messages.js";
import {
  ReplicationClient,
  ReplicationSetupError,
  type ReplicationStream,
  ReplicationUnavailableError,
  type TimelineEnd,
} from "./replication.js";

export interface WalStreamOptions {
  readonly slot: string;
  /** How often the segment in progress is stored when new bytes came. */
  readonly uploadIntervalMs: number;
  /** Aborted by SIGTERM/SIGINT: what was received is stored, the head written, the position confirmed. */
  readonly signal: AbortSignal;
  /** Where the streamer reports what an operator should see: the runtime's logger fits. */
  readonly report: StreamLog;
  /** What the store is, for messages. */
  readonly sinkDescription?: string;
  /** A sign of life each time round the loop, outages included (engine.ts `WalStreamContext.alive`). */
  readonly alive?: (() => void) | undefined;
}

export interface WalStreamSummary {
  readonly archivedLsn: string;
  readonly timeline: number;
  readonly segments: number;
  readonly partials: number;
  readonly bytesReceived: number;
}

/** How long the last upload may keep failing after the signal before the streamer gives up. */
const SHUTDOWN_GRACE_MS = 20_000;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 30_000;

function backoff(attempt: number): number {
  const ms = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** attempt);
  return ms / 2 + Math.random() * (ms / 2);
}

/** Streams until `options.signal` fires; resolves once what was received is in the bucket and confirmed. */
export function streamWal(
  conn: PgConnection,
  sink: WalSink,
  options: WalStreamOptions,
): Promise<WalStreamSummary> {
  return new WalStreamer(conn, sink, options).run();
}

interface SegmentJob {
  readonly kind: "segment";
  readonly timeline: number;
  readonly segno: number;
  readonly bytes: Uint8Array;
  readonly partial: boolean;
  /** The LSN just past the job's last byte. */
  readonly end: Lsn;
}

type Job = SegmentJob | { readonly kind: "head" };

/** A server's statement "all WAL flushed before `at` is before `lsn`". */
interface Observation {
  readonly lsn: Lsn;
  readonly at: Date;
}

/** The segment being assembled: bytes from its start up to `filled`. */
interface Assembly {
  readonly timeline: number;
  readonly segno: number;
  readonly bytes: Buffer;
  filled: number;
}

type SessionEnd =
  | { readonly kind: "stopped" }
  | { readonly kind: "timeline-end"; readonly end: TimelineEnd }
  | { readonly kind: "lost"; readonly error: unknown }
  | { readonly kind: "failed"; readonly error: Error };

class WalStreamer {
  private systemIdentifier = "";
  private serverVersion: string | undefined;
  private segmentSize = 0;
  private timeline = 0;
  /** Every byte before it is durably in the bucket; never moves back. */
  private archivedLsn: Lsn = 0n;
  private archivedAt = new Date();
  private coveredUntil: Date | undefined;
  private serverLsn: Lsn = 0n;
  private serverLsnAt = new Date();
  private observations: Observation[] = [];
  /** A keepalive answering our request: it proves its position once the next message shows nothing was sent. */
  private tentative: Observation | undefined;
  private confirmAsked = false;

  private assembly: Assembly | undefined;
  private received: Lsn = 0n;
  private stream: ReplicationStream | undefined;
  private readonly queue: Job[] = [];
  private draining: Promise<void> | undefined;
  /** Set and cleared inside drain() itself, so a job queued as it finishes starts the next one. */
  private drainActive = false;
  private drainFailure: Error | undefined;
  private paused = false;
  private storeDown = false;
  private shutdownDeadline = Infinity;
  private readonly historyStored = new Set<number>();
  private serverAway: Date | undefined;
  private serverAttempts = 0;
  /** Ends the session when an upload fails for good (a bug, or the shutdown grace ran out). */
  private failSession: ((error: Error) => void) | undefined;
  private readonly counts = { segments: 0, partials: 0, bytesReceived: 0 };

  constructor(
    private readonly conn: PgConnection,
    private readonly sink: WalSink,
    private readonly options: WalStreamOptions,
  ) {}

  private get where(): string {
    return describeConnection(this.conn);
  }

  async run(): Promise<WalStreamSummary> {
    const { signal } = this.options;
    signal.addEventListener("abort", () => (this.shutdownDeadline = performance.now() + SHUTDOWN_GRACE_MS), {
      once: true,
    });
    let client = await this.firstConnect();
    if (!client) return this.summary();
    let start: Lsn;
    try {
      start = await this.prepare(client);
    } catch (error) {
      await client.close();
      throw error;
    }
    try {
      for (;;) {
        if (signal.aborted) break;
        if (!client) {
          client = await this.reconnect();
          if (!client) break;
          start = segmentStart(segmentOf(this.archivedLsn, this.segmentSize), this.segmentSize);
        }
        const end = await this.session(client, start);
        if (end.kind === "stopped") break;
        if (end.kind === "timeline-end") {
          this.options.report.info("timeline ended on the server: following the next one", {
            timeline: this.timeline,
            nextTimeline: end.end.nextTimeline,
            switchLsn: formatLsn(end.end.switchLsn),
          });
          this.timeline = end.end.nextTimeline;
          // pg_receivewal's rule: a timeline is always streamed from a segment boundary, so whole files are built.
          start = segmentStart(segmentOf(end.end.switchLsn, this.segmentSize), this.segmentSize);
          continue;
        }
        if (end.kind === "failed") throw end.error;
        if (end.error instanceof ReplicationSetupError || isRefusal(end.error)) throw end.error;
        this.serverLost(end.error);
        await client.close();
        client = undefined;
      }
    } finally {
      await client?.close();
    }
    return this.summary();
  }

  private summary(): WalStreamSummary {
    return { archivedLsn: formatLsn(this.archivedLsn), timeline: this.timeline, ...this.counts };
  }

  /** The first connection: a server that is away is waited for (a Deployment may start before its database). */
  private async firstConnect(): Promise<ReplicationClient | undefined> {
    try {
      return await ReplicationClient.connect(this.conn);
    } catch (error) {
      if (!(error instanceof ReplicationUnavailableError)) throw error;
      this.serverLost(error);
      return this.reconnect();
    }
  }

  /**
   * What the server is and where streaming starts: the slot (made if missing), the bucket's head (same cluster,
   * no gap between what it holds and what the slot still has).
   */
  private async prepare(client: ReplicationClient): Promise<Lsn> {
    const { slot, report } = this.options;
    const identity = await client.identifySystem();
    this.systemIdentifier = identity.systemIdentifier;
    this.segmentSize = await client.segmentSize();
    this.serverVersion = await client.serverVersion();
    this.serverLsn = identity.walEnd;
    this.serverLsnAt = new Date();
    // What the server had flushed when asked: once the bucket reaches it, everything committed before is covered.
    this.observations.push({ lsn: identity.walEnd, at: this.serverLsnAt });
    const head = await this.durably("read the WAL head", () => this.sink.readHead());
    const target = this.options.sinkDescription ?? "the bucket";
    if (head && head.systemIdentifier !== identity.systemIdentifier) {
      throw new CapsuleError(
        ErrorCode.Refused,
        `${target} holds WAL of database system ${head.systemIdentifier}, but ${this.where} is system ` +
          `${identity.systemIdentifier}: stream it under another target`,
      );
    }
    if (head && head.segmentSize !== this.segmentSize) {
      throw new CapsuleError(
        ErrorCode.Refused,
        `${target} holds WAL in ${head.segmentSize}-byte segments, but ${this.where} writes ${this.segmentSize}: ` +
          "stream it under another target",
      );
    }
    let position = await client.readSlot(slot);
    const created = !position;
    if (!position) {
      await client.createSlot(slot);
      position = await client.readSlot(slot);
      report.info("created the physical replication slot: the server keeps WAL for capsule from now on", {
        slot,
        server: this.where,
      });
    }
    const restart = position?.restartLsn ?? identity.walEnd;
    const restartTimeline = position?.restartTimeline ?? identity.timeline;
    let start: Lsn;
    if (head) {
      const archived = parseLsn(head.archivedLsn);
      const firstKept = segmentStart(segmentOf(restart, this.segmentSize), this.segmentSize);
      if (firstKept > archived) {
        // A slot made just now for a stream that cannot continue would only hold WAL nobody reads.
        if (created) await client.dropSlot(slot).catch(() => undefined);
        const from = segmentOf(archived, this.segmentSize);
        const to = segmentOf(restart, this.segmentSize) - 1;
        throw new CapsuleError(
          ErrorCode.Refused,
          `gap: ${target} holds WAL up to ${head.archivedLsn}, but slot "${slot}" on ${this.where} keeps WAL only ` +
            `from ${formatLsn(restart)}: segments ${walFileName(head.timeline, from, this.segmentSize)}` +
            `${to > from ? `..${walFileName(restartTimeline, to, this.segmentSize)}` : ""} are in neither; ` +
            "a restore cannot cross them (take a new base backup, and stream under a new target)",
        );
      }
      this.archivedLsn = archived;
      this.archivedAt = new Date(head.archivedAt);
      this.coveredUntil = new Date(head.coveredUntil);
      start = archived >= restart ? archived : restart;
      this.timeline = archived >= restart ? head.timeline : restartTimeline;
    } else {
      start = restart;
      this.timeline = restartTimeline;
      // Nothing is in the bucket yet: the stream begins at the first segment it stores.
      this.archivedLsn = segmentStart(segmentOf(start, this.segmentSize), this.segmentSize);
    }
    report.info("streaming WAL", {
      server: this.where,
      slot,
      systemIdentifier: this.systemIdentifier,
      timeline: this.timeline,
      from: formatLsn(start),
      into: target,
      segmentSize: this.segmentSize,
    });
    return segmentStart(segmentOf(start, this.segmentSize), this.segmentSize);
  }

  /** Said once per outage; the streamer says it is back when WAL flows again, not merely when it connects. */
  private serverLost(error: unknown): void {
    if (this.serverAway) return;
    this.serverAway = new Date();
    this.options.report.warn("lost the server: reconnecting with backoff", {
      server: this.where,
      error: messageOf(error),
      archivedLsn: formatLsn(this.archivedLsn),
    });
  }

  /**
   * Connects again after the server went away, with backoff that grows across attempts until WAL flows again (a
   * slot another streamer holds fails after connecting); undefined when the signal came first.
   */
  private async reconnect(): Promise<ReplicationClient | undefined> {
    const { signal } = this.options;
    for (;;) {
      this.options.alive?.();
      await sleep(backoff(this.serverAttempts++), undefined, { signal }).catch(() => undefined);
      if (signal.aborted) return undefined;
      let client: ReplicationClient | undefined;
      try {
        client = await ReplicationClient.connect(this.conn);
        const identity = await client.identifySystem();
        if (this.systemIdentifier && identity.systemIdentifier !== this.systemIdentifier) {
          throw new CapsuleError(
            ErrorCode.Refused,
            `${this.where} came back as database system ${identity.systemIdentifier}, not ${this.systemIdentifier}: ` +
              "stream it under another target",
          );
        }
        return client;
      } catch (error) {
        await client?.close();
        if (error instanceof ReplicationSetupError || isRefusal(error)) throw error;
      }
    }
  }

  /** One START_REPLICATION, until the signal, the end of the timeline, or the connection's loss. */
  private async session(client: ReplicationClient, start: Lsn): Promise<SessionEnd> {
    const { signal, uploadIntervalMs } = this.options;
    if (this.timeline > 1 && !this.historyStored.has(this.timeline)) {
      let content: Buffer;
      try {
        content = (await client.timelineHistory(this.timeline)).content;
      } catch (error) {
        return { kind: "lost", error };
      }
      await this.durably("store the timeline history", () => this.sink.putHistory(this.timeline, content));
      this.historyStored.add(this.timeline);
    }
    const segno = segmentOf(start, this.segmentSize);
    this.assembly = {
      timeline: this.timeline,
      segno,
      bytes: Buffer.allocUnsafe(this.segmentSize),
      filled: 0,
    };
    this.received = start;
    this.tentative = undefined;
    const stream = client.startStreaming(this.options.slot, start, this.timeline, (m) => this.onMessage(m));
    this.stream = stream;
    this.paused = false;
    const ticker = setInterval(() => this.tick(), uploadIntervalMs);
    let onAbort: (() => void) | undefined;
    const stopped = new Promise<SessionEnd>((resolve) => {
      onAbort = () => resolve({ kind: "stopped" });
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
    });
    const ended = stream.ended.then(
      (end): SessionEnd => (end ? { kind: "timeline-end", end } : { kind: "stopped" }),
      (error: unknown): SessionEnd => ({ kind: "lost", error }),
    );
    const failed = new Promise<SessionEnd>((resolve) => {
      this.failSession = (error) => resolve({ kind: "failed", error });
    });
    let outcome: SessionEnd;
    try {
      outcome = await Promise.race([stopped, ended, failed]);
    } finally {
      clearInterval(ticker);
      this.failSession = undefined;
      if (onAbort) signal.removeEventListener("abort", onAbort);
    }
    if (outcome.kind === "failed") {
      await stream.stop();
      return outcome;
    }
    // Whatever was received is stored before anything else happens: a restart streams from the bucket's end.
    this.storeInProgress();
    await this.settled();
    if (outcome.kind === "stopped") {
      // The head is written and the position confirmed by settled(); then the copy ends politely.
      await Promise.race([stream.stop(), sleep(5_000)]);
    }
    this.stream = undefined;
    return outcome;
  }

  private onMessage(message: ServerCopyMessage): void {
    const now = new Date();
    if (this.serverAway) {
      this.options.report.info("the server is back: streaming again", {
        server: this.where,
        awaySeconds: Math.round((now.getTime() - this.serverAway.getTime()) / 1000),
        attempts: this.serverAttempts,
      });
      this.serverAway = undefined;
      this.serverAttempts = 0;
    }
    if (message.walEnd > this.serverLsn) {
      this.serverLsn = message.walEnd;
      this.serverLsnAt = now;
    }
    if (message.kind === "keepalive") {
      // A reply to our request followed by another at the same position: nothing was sent in between, so every
      // byte flushed before the first was already sent.
      if (this.tentative && this.tentative.lsn === message.walEnd) this.observe(this.tentative);
      this.tentative = undefined;
      if (message.replyRequested) this.sendStatus(false);
      else {
        this.tentative = { lsn: message.walEnd, at: message.sentAt };
        if (!this.confirmAsked) {
          this.confirmAsked = true;
          this.sendStatus(true);
        }
      }
      return;
    }
    this.tentative = undefined;
    this.append(message.start, message.data);
    this.observe({ lsn: message.walEnd, at: message.sentAt });
  }

  /** Copies WAL bytes into the segment being assembled; a full segment is queued for upload. */
  private append(start: Lsn, data: Buffer): void {
    let bytes = data;
    if (start < this.received) {
      const overlap = Number(this.received - start);
      if (overlap >= bytes.length) return;
      bytes = bytes.subarray(overlap);
    } else if (start > this.received) {
      throw new CapsuleError(
        ErrorCode.DatabaseError,
        `${this.where} sent WAL from ${formatLsn(start)}, but the stream was at ${formatLsn(this.received)}`,
      );
    }
    this.counts.bytesReceived += bytes.length;
    while (bytes.length > 0) {
      const assembly = this.assembly!;
      const n = Math.min(bytes.length, this.segmentSize - assembly.filled);
      bytes.copy(assembly.bytes, assembly.filled, 0, n);
      assembly.filled += n;
      this.received += BigInt(n);
      bytes = bytes.subarray(n);
      if (assembly.filled === this.segmentSize) {
        this.enqueue({
          kind: "segment",
          timeline: assembly.timeline,
          segno: assembly.segno,
          bytes: assembly.bytes,
          partial: false,
          end: this.received,
        });
        this.assembly = {
          timeline: assembly.timeline,
          segno: assembly.segno + 1,
          bytes: Buffer.allocUnsafe(this.segmentSize),
          filled: 0,
        };
      }
    }
  }

  private observe(observation: Observation): void {
    this.observations.push(observation);
    // Nothing to upload, but the bucket now covers a later server time: say so, at most about once a second.
    const covered = this.coveredUntil?.getTime() ?? 0;
    if (
      this.queue.length === 0 &&
      observation.lsn <= this.archivedLsn &&
      observation.at.getTime() - covered >= 1000
    ) {
      this.enqueue({ kind: "head" });
    }
  }

  /** Every upload interval: the segment in progress, if it grew; and a request for the server's position. */
  private tick(): void {
    this.options.alive?.();
    if (this.paused) {
      // Not reading, but still answering, so the server's wal_sender_timeout does not end the session.
      this.sendStatus(false);
      return;
    }
    this.confirmAsked = false;
    this.sendStatus(true);
    this.storeInProgress();
  }

  /** Queues the segment in progress as a partial when it holds bytes the bucket does not. */
  private storeInProgress(): void {
    const assembly = this.assembly;
    if (!assembly || assembly.filled === 0) return;
    const end = segmentStart(assembly.segno, this.segmentSize) + BigInt(assembly.filled);
    const queuedEnd = this.queue.reduce<Lsn>(
      (max, job) => (job.kind === "segment" && job.end > max ? job.end : max),
      0n,
    );
    if (end <= this.archivedLsn || end <= queuedEnd) return;
    this.enqueue({
      kind: "segment",
      timeline: assembly.timeline,
      segno: assembly.segno,
      bytes: assembly.bytes.subarray(0, assembly.filled),
      partial: true,
      end,
    });
  }

  private enqueue(job: Job): void {
    this.queue.push(job);
    if (job.kind === "segment" && !this.paused) {
      // Backpressure: the server waits while the bucket is behind.
      this.paused = true;
      this.stream?.pause();
    }
    if (!this.drainActive) {
      this.drainActive = true;
      this.draining = this.drain();
    }
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const job = this.queue[0]!;
        if (job.kind === "segment") {
          await this.durably("store a WAL segment", () =>
            this.sink.putSegment({
              timeline: job.timeline,
              segno: job.segno,
              segmentSize: this.segmentSize,
              bytes: job.bytes,
              partial: job.partial,
            }),
          );
          if (job.partial) this.counts.partials++;
          else this.counts.segments++;
          if (job.end > this.archivedLsn) {
            this.archivedLsn = job.end;
            this.archivedAt = new Date();
          }
        }
        this.queue.shift();
        // Coalesce: one head for a run of uploads.
        if (this.queue.some((j) => j.kind === "segment")) continue;
        await this.durably("write the WAL head", () => this.sink.writeHead(this.head()));
        this.sendStatus(false);
      }
    } catch (error) {
      this.drainFailure = error instanceof Error ? error : new Error(String(error));
      this.queue.length = 0;
      this.failSession?.(this.drainFailure);
    } finally {
      this.drainActive = false;
      if (this.paused) {
        this.paused = false;
        this.stream?.resume();
      }
    }
  }

  /** Resolves once every queued upload is durable and the head written; rejects if the shutdown grace ran out. */
  private async settled(): Promise<void> {
    while (this.drainActive) await this.draining;
    if (this.drainFailure !== undefined) {
      const failure = this.drainFailure;
      this.drainFailure = undefined;
      throw failure;
    }
  }

  private head(): WalHead {
    const covered = this.observations.filter((o) => o.lsn <= this.archivedLsn);
    const newest = covered.reduce<Date | undefined>(
      (max, o) => (!max || o.at > max ? o.at : max),
      this.coveredUntil,
    );
    this.coveredUntil = newest;
    this.observations = this.observations.filter((o) => o.lsn > this.archivedLsn);
    const now = new Date();
    return {
      version: 1,
      systemIdentifier: this.systemIdentifier,
      timeline: this.timeline,
      segmentSize: this.segmentSize,
      slot: this.options.slot,
      ...(this.serverVersion ? { serverVersion: this.serverVersion } : {}),
      archivedLsn: formatLsn(this.archivedLsn),
      archivedAt: this.archivedAt.toISOString(),
      // Nothing proven covered yet: the epoch, rather than a time the bucket may not reach.
      coveredUntil: (newest ?? new Date(0)).toISOString(),
      serverLsn: formatLsn(this.serverLsn > this.archivedLsn ? this.serverLsn : this.archivedLsn),
      serverLsnAt: this.serverLsnAt.toISOString(),
      updatedAt: now.toISOString(),
    };
  }

  /** Confirms to the server only what the bucket holds: the slot releases WAL up to `archivedLsn`. */
  private sendStatus(replyRequested: boolean): void {
    try {
      this.stream?.sendStatus({
        written: this.received > this.archivedLsn ? this.received : this.archivedLsn,
        flushed: this.archivedLsn,
        applied: 0n,
        now: new Date(),
        replyRequested,
      });
    } catch {
      // The connection is going away; its loss ends the session.
    }
  }

  /** Retries store work with backoff until it succeeds, saying once that the store is away and once that it is back. */
  private async durably<T>(what: string, work: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await work();
        if (this.storeDown) {
          this.storeDown = false;
          this.options.report.info("the store is back: uploading again", {
            store: this.options.sinkDescription,
            attempts: attempt + 1,
          });
        }
        return result;
      } catch (error) {
        if (error instanceof CapsuleError && error.code === ErrorCode.InvalidStatefile) throw error;
        // A bug is not an outage: retrying it forever would hide it.
        if (error instanceof RangeError) throw error;
        if (!this.storeDown) {
          this.storeDown = true;
          this.options.report.warn(`could not ${what}: retrying with backoff; reading WAL paused meanwhile`, {
            store: this.options.sinkDescription,
            error: messageOf(error),
            archivedLsn: formatLsn(this.archivedLsn),
          });
        }
        const delay = backoff(attempt);
        if (performance.now() + delay > this.shutdownDeadline) {
          throw new CapsuleError(
            ErrorCode.StoreUnreachable,
            `could not ${what} before shutting down: the bucket holds WAL up to ${formatLsn(this.archivedLsn)}, ` +
              `the slot keeps the rest (${messageOf(error)})`,
          );
        }
        this.options.alive?.();
        await sleep(delay);
      }
    }
  }
}

function isRefusal(error: unknown): boolean {
  return error instanceof CapsuleError && error.code === ErrorCode.Refused;
}
