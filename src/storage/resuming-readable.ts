/**
 * A download that survives a cut connection, shared by the cloud adapters: the SDKs retry requests, not response
 * bodies, so when a body fails mid-stream the rest is asked for again from the byte it stopped at (docs/adr/0013).
 */
import { Readable } from "node:stream";

/** A download cut off this many times in a row without a byte in between is given up. */
const RESUMES_WITHOUT_PROGRESS = 3;

/**
 * A response body that, when its connection fails, asks `reopen` for the rest from the byte it stopped at. A new
 * connection is opened only when the consumer wants more bytes, so a consumer that pauses for a long time (a
 * restore tool busy with an index) costs one reopen, not a loop of them.
 */
export class ResumingReadable extends Readable {
  private body: Readable | undefined;
  private offset = 0;
  private reopening = false;
  private failuresWithoutProgress = 0;

  constructor(
    first: Readable,
    private readonly reopen: (offset: number) => Promise<Readable>,
    private readonly translate: (error: unknown) => Error,
    private readonly options: {
      /** An error that no retry can cure (the bytes did not match their checksum): reported at once. */
      readonly isFatal?: (error: unknown) => boolean;
      /**
       * A body that sends nothing for this long while the consumer waits is cut and resumed, for clients whose
       * response bodies have no idle timeout of their own.
       */
      readonly idleTimeoutMs?: number;
    } = {},
  ) {
    super();
    this.attach(first);
  }

  private idle: NodeJS.Timeout | undefined;

  override _read(): void {
    if (this.body) {
      this.watch(this.body);
      this.body.resume();
    } else if (!this.reopening) this.resumeFromOffset();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.idle);
    const body = this.body;
    this.body = undefined;
    body?.destroy();
    callback(error);
  }

  /** (Re)starts the idle watch on the body the consumer is waiting on. */
  private watch(body: Readable): void {
    const ms = this.options.idleTimeoutMs;
    if (ms === undefined) return;
    if (this.idle) this.idle.refresh();
    else {
      this.idle = setTimeout(() => {
        this.idle = undefined;
        if (this.body !== body || body.isPaused()) return;
        body.emit("error", Object.assign(new Error(`no bytes for ${ms} ms`), { code: "ETIMEDOUT" }));
      }, ms);
      this.idle.unref();
    }
  }

  private unwatch(): void {
    clearTimeout(this.idle);
    this.idle = undefined;
  }

  private attach(body: Readable): void {
    this.body = body;
    this.watch(body);
    body.on("data", (chunk: Buffer) => {
      this.offset += chunk.length;
      this.failuresWithoutProgress = 0;
      if (this.push(chunk)) this.watch(body);
      else {
        // The consumer is busy: a silent body is not the server's doing.
        this.unwatch();
        body.pause();
      }
    });
    body.on("end", () => {
      this.unwatch();
      if (this.body === body) this.push(null);
    });
    // A body closed before its end without an error is cut off all the same.
    body.on("close", () => {
      if (this.body === body && !body.readableEnded)
        body.emit("error", new Error("connection closed mid-body"));
    });
    body.on("error", (error) => {
      if (this.body !== body) return;
      this.unwatch();
      this.body = undefined;
      body.removeAllListeners("data");
      body.destroy();
      if (this.options.isFatal?.(error) || ++this.failuresWithoutProgress > RESUMES_WITHOUT_PROGRESS)
        this.destroy(this.translate(error));
      // Reopened at once if the consumer is waiting for bytes (the buffer is not full); otherwise on its next read.
      else if (this.readableLength < this.readableHighWaterMark) this.resumeFromOffset();
    });
  }

  private resumeFromOffset(): void {
    this.reopening = true;
    this.reopen(this.offset).then(
      (body) => {
        this.reopening = false;
        if (this.destroyed) body.destroy();
        else this.attach(body);
      },
      (error: unknown) => {
        this.reopening = false;
        this.destroy(error instanceof Error ? error : new Error(String(error)));
      },
    );
  }
}
