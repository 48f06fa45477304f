/**
 * The replica's side of a full sync, as `redis-cli --rdb` does it: after `SYNC` the server sends `\n` keepalives
 * while it prepares the snapshot, then the RDB as `$<length>\r\n<bytes>` (disk-based) or `$EOF:<40-byte mark>\r\n
 * <bytes><mark>` (diskless). `SyncPayload` is a Readable of exactly the RDB bytes: it ends only when the whole
 * payload arrived and errors on anything short, so a consumer can never mistake a cut-off snapshot for a whole one.
 * Backpressure: the socket is paused while the consumer is full.
 */
import type { Socket } from "node:net";
import { Readable } from "node:stream";
import { CapsuleError, ErrorCode } from "../../domain/errors.js";
import { redact } from "../../redact.js";

const EOF_MARK_LENGTH = 40;
/** A preamble line longer than this is not a Redis reply. */
const MAX_LINE = 4096;

export type PayloadForm = "length" | "eof-mark";

const IDLE_TIMEOUT_MS = 120_000;

export class SyncPayload extends Readable {
  private preamble: Buffer | undefined = Buffer.alloc(0);
  private remaining = 0;
  private mark: Buffer | undefined;
  /** Diskless form: the last bytes seen, held back until we know they are not the mark. */
  private held: Buffer = Buffer.alloc(0);
  private received = 0;
  private finished = false;
  form: PayloadForm | undefined;
  /** The announced length (length form only). */
  expected: number | undefined;

  constructor(
    private readonly socket: Socket,
    buffered: Buffer,
    private readonly where: string,
  ) {
    super({ highWaterMark: 1024 * 1024 });
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", (error) => this.fail(this.cut(`the connection failed (${error.message})`)));
    socket.on("close", () => this.fail(this.cut("the server closed the connection")));
    // Not even a keepalive for this long: the server is gone.
    socket.setTimeout(IDLE_TIMEOUT_MS);
    socket.on("timeout", () => {
      socket.destroy();
      this.fail(this.cut(`nothing arrived for ${IDLE_TIMEOUT_MS / 1000} s`));
    });
    if (buffered.length > 0) this.onData(buffered);
  }

  /** Payload bytes passed on so far. */
  get bytes(): number {
    return this.received;
  }

  override _read(): void {
    if (!this.finished) this.socket.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.finished = true;
    this.socket.destroy();
    callback(error);
  }

  private onData(chunk: Buffer): void {
    if (this.finished) return;
    if (this.preamble !== undefined) {
      const body = this.readPreamble(chunk);
      if (body === undefined || this.finished) return;
      chunk = body;
    }
    if (chunk.length === 0) return;
    if (this.mark) this.onMarkedData(chunk);
    else this.onCountedData(chunk);
  }

  /** Consumes keepalives and the bulk header; returns the bytes after it once the header is complete. */
  private readPreamble(chunk: Buffer): Buffer | undefined {
    let data = Buffer.concat([this.preamble!, chunk]);
    // Keepalive newlines before the header.
    let start = 0;
    while (start < data.length && data[start] === 0x0a) start++;
    data = data.subarray(start);
    const lineEnd = data.indexOf("\r\n");
    if (lineEnd < 0) {
      if (data.length > MAX_LINE) this.fail(this.protocol(`a ${data.length}-byte line without an end`));
      this.preamble = data;
      return undefined;
    }
    const line = data.toString("latin1", 0, lineEnd);
    const rest = data.subarray(lineEnd + 2);
    if (line.startsWith("-")) {
      this.fail(
        new CapsuleError(ErrorCode.DatabaseError, redact(`${this.where}: SYNC refused: ${line.slice(1)}`)),
      );
      return undefined;
    }
    if (line.startsWith("+FULLRESYNC")) {
      // PSYNC's answer; the bulk header follows.
      this.preamble = Buffer.alloc(0);
      return rest.length > 0 ? this.readPreamble(rest) : undefined;
    }
    const markMatch = /^\$EOF:(.{40})$/s.exec(line);
    if (markMatch) {
      this.mark = Buffer.from(markMatch[1]!, "latin1");
      this.form = "eof-mark";
    } else if (/^\$\d+$/.test(line)) {
      this.remaining = Number(line.slice(1));
      this.expected = this.remaining;
      this.form = "length";
    } else {
      this.fail(this.protocol(`unexpected reply ${JSON.stringify(line.slice(0, 80))} to SYNC`));
      return undefined;
    }
    this.preamble = undefined;
    if (this.form === "length" && this.remaining === 0) this.complete();
    return rest;
  }

  private onCountedData(chunk: Buffer): void {
    const take = Math.min(chunk.length, this.remaining);
    this.remaining -= take;
    this.forward(take === chunk.length ? chunk : chunk.subarray(0, take));
    // Anything after the payload is the replication stream (servers without rdb-only); capsule does not need it.
    if (this.remaining === 0) this.complete();
  }

  private onMarkedData(chunk: Buffer): void {
    const mark = this.mark!;
    if (chunk.length >= EOF_MARK_LENGTH) {
      if (this.held.length > 0) this.forward(this.held);
      const body = chunk.subarray(0, chunk.length - EOF_MARK_LENGTH);
      const last = chunk.subarray(chunk.length - EOF_MARK_LENGTH);
      if (body.length > 0) this.forward(body);
      if (last.equals(mark)) {
        this.held = Buffer.alloc(0);
        this.complete();
      } else this.held = Buffer.from(last);
      return;
    }
    const joined = Buffer.concat([this.held, chunk]);
    const cut = Math.max(0, joined.length - EOF_MARK_LENGTH);
    if (cut > 0) this.forward(joined.subarray(0, cut));
    this.held = joined.subarray(cut);
    if (this.held.equals(mark)) {
      this.held = Buffer.alloc(0);
      this.complete();
    }
  }

  private forward(bytes: Buffer): void {
    this.received += bytes.length;
    if (!this.push(bytes)) this.socket.pause();
  }

  private complete(): void {
    this.finished = true;
    this.socket.removeAllListeners("close");
    this.socket.removeAllListeners("timeout");
    this.socket.removeAllListeners("data");
    this.socket.on("error", () => undefined);
    this.socket.destroy();
    this.push(null);
  }

  private fail(error: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.destroy(error);
  }

  private cut(why: string): CapsuleError {
    const progress =
      this.preamble !== undefined
        ? "before the snapshot started"
        : this.expected !== undefined
          ? `after ${this.received} of ${this.expected} snapshot bytes`
          : `after ${this.received} snapshot bytes, before the end mark`;
    return new CapsuleError(ErrorCode.DatabaseError, `${this.where}: ${why} ${progress}`);
  }

  private protocol(what: string): CapsuleError {
    return new CapsuleError(ErrorCode.DatabaseError, `${this.where}: replication protocol error: ${what}`);
  }
}
