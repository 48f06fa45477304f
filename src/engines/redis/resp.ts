/**
 * RESP2, the Redis wire protocol, as pure functions: encode a command, and parse replies (or a replica's commands)
 * incrementally from whatever chunks the socket delivers. No I/O here; `client.ts` and `replication-master.ts` own
 * the sockets.
 */

/** An error reply (`-ERR …`): a value, not a thrown error, until the caller decides. */
export class RespError {
  constructor(readonly message: string) {}
  /** The first word, e.g. "WRONGPASS", "NOAUTH", "NOPERM", "ERR". */
  get code(): string {
    return this.message.split(" ", 1)[0] ?? "";
  }
}

/** Simple strings are `string`, bulk strings `Buffer` (binary-safe), nil is `null`. */
export type RespValue = string | number | Buffer | null | RespError | RespValue[];

/** Encodes a command as a RESP array of bulk strings (the binary-safe form every server accepts). */
export function encodeCommand(args: ReadonlyArray<string | Buffer>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = typeof arg === "string" ? Buffer.from(arg) : arg;
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, CRLF);
  }
  return Buffer.concat(parts);
}

const CRLF = Buffer.from("\r\n");
const INCOMPLETE = Symbol("incomplete");

/** Replies larger than this are refused: capsule only reads small replies (INFO, CONFIG GET, OK). */
const MAX_BULK = 64 * 1024 * 1024;

export class RespProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RespProtocolError";
  }
}

/**
 * Incremental RESP parser. `push` chunks, then call `next()` until it returns `undefined` (more bytes needed).
 * Inline commands (a bare line, as `redis-cli` or telnet send) are returned as arrays of strings.
 */
export class RespReader {
  private buffer: Buffer = Buffer.alloc(0);
  private offset = 0;

  push(chunk: Buffer): void {
    this.buffer =
      this.offset >= this.buffer.length ? chunk : Buffer.concat([this.buffer.subarray(this.offset), chunk]);
    this.offset = 0;
  }

  /** Bytes received but not yet parsed (handed over when a socket switches to raw replication data). */
  takeRemainder(): Buffer {
    const rest = this.buffer.subarray(this.offset);
    this.buffer = Buffer.alloc(0);
    this.offset = 0;
    return rest;
  }

  next(): RespValue | undefined {
    if (this.offset >= this.buffer.length) return undefined;
    const parsed = this.parse(this.offset);
    if (parsed === INCOMPLETE) return undefined;
    this.offset = parsed.end;
    return parsed.value;
  }

  private parse(at: number): { value: RespValue; end: number } | typeof INCOMPLETE {
    const buf = this.buffer;
    const lineEnd = buf.indexOf(CRLF, at);
    if (lineEnd < 0) {
      if (buf.length - at > 64 * 1024) throw new RespProtocolError("reply line longer than 64 KiB");
      return INCOMPLETE;
    }
    const type = buf[at]!;
    const line = buf.toString("latin1", at + 1, lineEnd);
    const next = lineEnd + 2;
    switch (type) {
      case 0x2b: // +
        return { value: buf.toString("utf8", at + 1, lineEnd), end: next };
      case 0x2d: // -
        return { value: new RespError(buf.toString("utf8", at + 1, lineEnd)), end: next };
      case 0x3a: // :
        return { value: Number(line), end: next };
      case 0x24: {
        // $
        const length = integer(line);
        if (length < 0) return { value: null, end: next };
        if (length > MAX_BULK) throw new RespProtocolError(`bulk reply of ${length} bytes is too large`);
        if (buf.length < next + length + 2) return INCOMPLETE;
        return { value: buf.subarray(next, next + length), end: next + length + 2 };
      }
      case 0x2a: {
        // *
        const count = integer(line);
        if (count < 0) return { value: null, end: next };
        const items: RespValue[] = [];
        let position = next;
        for (let i = 0; i < count; i++) {
          const item = this.parse(position);
          if (item === INCOMPLETE) return INCOMPLETE;
          items.push(item.value);
          position = item.end;
        }
        return { value: items, end: position };
      }
      default: {
        // An inline command: words separated by spaces.
        const words = buf
          .toString("utf8", at, lineEnd)
          .split(" ")
          .filter((w) => w.length > 0);
        return { value: words, end: next };
      }
    }
  }
}

function integer(text: string): number {
  if (!/^-?\d+$/.test(text)) throw new RespProtocolError(`expected an integer, got ${JSON.stringify(text)}`);
  return Number(text);
}

/** A reply as text (bulk strings decoded as UTF-8), for INFO, CONFIG GET and the like. */
export function replyText(value: RespValue): string {
  if (Buffer.isBuffer(value)) return value.toString("utf8");
  if (typeof value === "string") return value;
  if (typeof value === "number") return String(value);
  if (value === null) return "";
  if (value instanceof RespError) return value.message;
  return value.map(replyText).join(" ");
}
