/**
 * A streaming RDB checker: validates the header ("REDIS" + 4-digit version) and the CRC-64 trailer, and follows the
 * file's structure just far enough to count the keys (and keys with a TTL) of every logical database — the
 * backup's fingerprint, consistent with the snapshot by construction (docs/adr/0005). Values are skipped, never
 * decoded or buffered: memory stays constant whatever the size of a key or value.
 *
 * Pure (bytes in, summary out). `RdbVerifier` wraps it as a pass-through stream for the backup path.
 *
 * The format (Redis src/rdb.h, rdb.c): header, then opcodes (AUX, SELECTDB, RESIZEDB, EXPIRETIME…, FUNCTION2,
 * MODULE_AUX, SLOT_INFO) and key/value records (a type byte, the key string, the type's value), then EOF (0xff) and,
 * from version 5, the CRC-64 of everything before it (little-endian; zero when the server has rdbchecksum off).
 */
import { Transform, type TransformCallback } from "node:stream";
import { CapsuleError, ErrorCode } from "../../domain/errors.js";
import { Crc64 } from "./crc64.js";
import type { DbCounts } from "./info.js";

export interface RdbSummary {
  /** The RDB format version from the header (e.g. 10 for Redis 7.0, 11 for 7.2, 12 for 7.4). */
  readonly version: number;
  readonly sizeBytes: number;
  /** "db0" → counts; absent when the structure could not be followed (see `unparsed`). */
  readonly databases?: Record<string, DbCounts>;
  /** Why the key counts are unavailable: a value type or opcode this capsule does not know. */
  readonly unparsed?: string;
  /** `verified`: the trailer matched; `disabled`: the server wrote a zero trailer (rdbchecksum no). */
  readonly checksum: "verified" | "disabled" | "none-before-v5";
  /** Short printable AUX fields (redis-ver, redis-bits, ctime, used-mem, …). */
  readonly aux: Record<string, string>;
}

/** The newest RDB version capsule has read the format of (Redis 7.4/8.x write 12). */
export const NEWEST_KNOWN_RDB_VERSION = 12;

const NEED = -1;
const EMPTY = Buffer.alloc(0);

/** Where the parser is: the bytes it has not consumed yet, and what it found out about the current string. */
interface Cursor {
  buf: Buffer;
  pos: number;
  /** Absolute offset of buf[0] in the RDB. */
  base: number;
  /** Set by tryStringHeader for integer-encoded strings. */
  intValue: number | undefined;
  /** Set by tryStringHeader for LZF-compressed strings. */
  compressed: boolean;
}

interface ParseState {
  version: number;
  db: number;
  pendingExpire: boolean;
  databases: Record<string, DbCounts>;
  aux: Record<string, string>;
  /** Absolute offset of the EOF opcode, once seen. */
  eofAt: number;
}

/** The header was not an RDB's: a hard failure, unlike an unknown type deeper in the file. */
class HeaderError extends CapsuleError {
  constructor(message: string) {
    super(ErrorCode.DatabaseError, message);
    this.name = "HeaderError";
  }
}

/** A structure this parser cannot follow; the checksum still decides whether the bytes are good. */
class UnparsedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnparsedError";
  }
}

type Gen<T = void> = Generator<void, T, void>;

export class RdbScanner {
  private readonly crc = new Crc64();
  /** The last (up to) 8 bytes seen, not yet in the CRC: they may be the trailer. */
  private tail: Buffer = EMPTY;
  private total = 0;
  private readonly cursor: Cursor = { buf: EMPTY, pos: 0, base: 0, intValue: undefined, compressed: false };
  private readonly state: ParseState = {
    version: 0,
    db: 0,
    pendingExpire: false,
    databases: {},
    aux: {},
    eofAt: -1,
  };
  private parser: Gen | undefined = parseRdb(this.cursor, this.state);
  private unparsed: string | undefined;

  get bytes(): number {
    return this.total;
  }

  /** Feeds the next bytes. Throws when the header is not an RDB's. */
  update(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.total += chunk.length;
    this.updateCrc(chunk);
    if (!this.parser) return;
    const c = this.cursor;
    c.base += c.pos;
    c.buf = c.pos < c.buf.length ? Buffer.concat([c.buf.subarray(c.pos), chunk]) : chunk;
    c.pos = 0;
    try {
      if (this.parser.next().done) this.parser = undefined;
    } catch (error) {
      this.parser = undefined;
      if (error instanceof HeaderError) throw error;
      this.unparsed =
        error instanceof UnparsedError ? error.message : `unreadable structure: ${String(error)}`;
    }
    if (!this.parser) c.buf = EMPTY;
  }

  /** Ends the scan: throws when the RDB is truncated, has bytes after its end, or fails its checksum. */
  finish(): RdbSummary {
    const s = this.state;
    if (s.version === 0) {
      throw new CapsuleError(ErrorCode.DatabaseError, `not an RDB: only ${this.total} bytes`);
    }
    if (this.parser && !this.unparsed) {
      throw new CapsuleError(
        ErrorCode.DatabaseError,
        `the RDB is truncated: it ends after ${this.total} bytes, before its end marker`,
      );
    }
    const trailer = s.version >= 5 ? 8 : 0;
    if (s.eofAt >= 0 && s.eofAt + 1 + trailer !== this.total) {
      const extra = this.total - (s.eofAt + 1 + trailer);
      throw new CapsuleError(
        ErrorCode.DatabaseError,
        extra > 0
          ? `the RDB has ${extra} unexpected bytes after its end marker`
          : `the RDB is truncated inside its checksum trailer`,
      );
    }
    let checksum: RdbSummary["checksum"] = "none-before-v5";
    if (s.version >= 5) {
      if (this.tail.length !== 8) {
        throw new CapsuleError(ErrorCode.DatabaseError, "the RDB is truncated: no checksum trailer");
      }
      if (this.tail.equals(ZERO_CRC)) checksum = "disabled";
      else if (!this.tail.equals(this.crc.digestBytes())) {
        throw new CapsuleError(
          ErrorCode.ChecksumMismatch,
          `the RDB's CRC-64 does not match its trailer (computed ${this.crc.digestBytes().toString("hex")}, ` +
            `trailer ${this.tail.toString("hex")}): the snapshot is corrupt`,
        );
      } else checksum = "verified";
    }
    return {
      version: s.version,
      sizeBytes: this.total,
      ...(this.unparsed ? { unparsed: this.unparsed } : { databases: s.databases }),
      checksum,
      aux: s.aux,
    };
  }

  /** Everything except the last 8 bytes goes into the CRC; those 8 wait, as they may be the trailer. */
  private updateCrc(chunk: Buffer): void {
    if (chunk.length >= 8) {
      if (this.tail.length > 0) this.crc.update(this.tail);
      this.crc.update(chunk, 0, chunk.length - 8);
      this.tail = Buffer.from(chunk.subarray(chunk.length - 8));
    } else {
      const joined = Buffer.concat([this.tail, chunk]);
      const keep = Math.min(8, joined.length);
      this.crc.update(joined, 0, joined.length - keep);
      this.tail = joined.subarray(joined.length - keep);
    }
  }
}

const ZERO_CRC = Buffer.alloc(8);

/** A pass-through that scans an RDB on its way to the store and fails at its end when the RDB is bad. */
export class RdbVerifier extends Transform {
  private readonly scanner = new RdbScanner();
  private result: RdbSummary | undefined;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.scanner.update(chunk);
    } catch (error) {
      callback(error as Error);
      return;
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.result = this.scanner.finish();
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  get bytes(): number {
    return this.scanner.bytes;
  }

  /** Available once the stream has ended cleanly. */
  get summary(): RdbSummary {
    if (!this.result) throw new Error("RdbVerifier: summary read before the stream ended");
    return this.result;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The parser: a generator that yields whenever it needs more bytes than the cursor holds.

const OP = {
  SLOT_INFO: 244,
  FUNCTION2: 245,
  FUNCTION_PRE_GA: 246,
  MODULE_AUX: 247,
  IDLE: 248,
  FREQ: 249,
  AUX: 250,
  RESIZEDB: 251,
  EXPIRETIME_MS: 252,
  EXPIRETIME: 253,
  SELECTDB: 254,
  EOF: 255,
} as const;

function* parseRdb(c: Cursor, s: ParseState): Gen {
  while (c.buf.length - c.pos < 9) yield;
  const magic = c.buf.toString("latin1", c.pos, c.pos + 5);
  const versionText = c.buf.toString("latin1", c.pos + 5, c.pos + 9);
  if (magic !== "REDIS" || !/^\d{4}$/.test(versionText)) {
    throw new HeaderError(
      `not an RDB: it starts with ${JSON.stringify(c.buf.toString("latin1", c.pos, c.pos + 9))}, not "REDIS" and a 4-digit version`,
    );
  }
  s.version = Number(versionText);
  if (s.version < 1) throw new HeaderError(`not an RDB: version ${versionText}`);
  c.pos += 9;
  if (s.version > NEWEST_KNOWN_RDB_VERSION) {
    throw new UnparsedError(
      `RDB version ${s.version} is newer than this capsule reads (${NEWEST_KNOWN_RDB_VERSION})`,
    );
  }

  for (;;) {
    while (c.pos >= c.buf.length) yield;
    const type = c.buf[c.pos++]!;
    switch (type) {
      case OP.EOF:
        s.eofAt = c.base + c.pos - 1;
        return;
      case OP.SELECTDB:
        s.db = yield* len(c);
        break;
      case OP.EXPIRETIME:
        yield* skip(c, 4);
        s.pendingExpire = true;
        break;
      case OP.EXPIRETIME_MS:
        yield* skip(c, 8);
        s.pendingExpire = true;
        break;
      case OP.RESIZEDB:
        yield* len(c);
        yield* len(c);
        break;
      case OP.AUX: {
        const key = yield* smallString(c);
        const value = yield* smallString(c);
        if (key !== undefined && value !== undefined && /^[\x20-\x7e]*$/.test(value)) s.aux[key] = value;
        break;
      }
      case OP.FREQ:
        yield* skip(c, 1);
        break;
      case OP.IDLE:
        yield* len(c);
        break;
      case OP.MODULE_AUX:
        yield* len(c); // module id
        yield* len(c); // when_opcode
        yield* len(c); // when
        yield* moduleValue(c);
        break;
      case OP.FUNCTION2:
        yield* str(c);
        break;
      case OP.SLOT_INFO:
        yield* len(c);
        yield* len(c);
        yield* len(c);
        break;
      case OP.FUNCTION_PRE_GA:
        throw new UnparsedError("function data from a Redis 7.0 release candidate");
      default: {
        yield* str(c); // the key
        yield* value(c, type, c.base + c.pos - 1);
        const name = `db${s.db}`;
        const counts = (s.databases[name] ??= { keys: 0, expires: 0 });
        counts.keys++;
        if (s.pendingExpire) counts.expires++;
        s.pendingExpire = false;
      }
    }
  }
}

function* value(c: Cursor, type: number, at: number): Gen {
  switch (type) {
    case 0: // string
    case 9: // hash zipmap
    case 10: // list ziplist
    case 11: // set intset
    case 12: // zset ziplist
    case 13: // hash ziplist
    case 16: // hash listpack
    case 17: // zset listpack
    case 20: // set listpack
    case 23: // hash listpack with field TTLs, 7.4 RC
      yield* str(c);
      return;
    case 25: // hash listpack with field TTLs: min expire, then the listpack
      yield* skip(c, 8);
      yield* str(c);
      return;
    case 1: // list of strings
    case 2: // set
    case 14: {
      // quicklist of ziplists
      for (let n = yield* len(c); n > 0; n--) yield* str(c);
      return;
    }
    case 3: {
      // zset, scores as strings
      for (let n = yield* len(c); n > 0; n--) {
        yield* str(c);
        while (c.pos >= c.buf.length) yield;
        const scoreLength = c.buf[c.pos++]!;
        if (scoreLength < 253) yield* skip(c, scoreLength);
      }
      return;
    }
    case 4: {
      // hash
      for (let n = yield* len(c); n > 0; n--) {
        yield* str(c);
        yield* str(c);
      }
      return;
    }
    case 5: {
      // zset, binary scores
      for (let n = yield* len(c); n > 0; n--) {
        yield* str(c);
        yield* skip(c, 8);
      }
      return;
    }
    case 7: // module value, self-describing
      yield* len(c);
      yield* moduleValue(c);
      return;
    case 18: {
      // quicklist 2: container kind, then the node
      for (let n = yield* len(c); n > 0; n--) {
        yield* len(c);
        yield* str(c);
      }
      return;
    }
    case 22: // hash with field TTLs, 7.4 RC (absolute TTLs)
    case 24: {
      // hash with field TTLs: min expire, then [ttl, field, value]…
      if (type === 24) yield* skip(c, 8);
      for (let n = yield* len(c); n > 0; n--) {
        yield* len(c);
        yield* str(c);
        yield* str(c);
      }
      return;
    }
    case 15:
    case 19:
    case 21:
      yield* stream(c, type);
      return;
    default:
      throw new UnparsedError(`value type ${type} at byte ${at} is not one this capsule reads`);
  }
}

function* stream(c: Cursor, type: number): Gen {
  for (let n = yield* len(c); n > 0; n--) {
    yield* str(c); // master ID of the listpack
    yield* str(c); // the listpack
  }
  yield* len(c); // length
  yield* len(c); // last id ms
  yield* len(c); // last id seq
  if (type >= 19) {
    for (let i = 0; i < 5; i++) yield* len(c); // first id, max deleted id, entries added
  }
  for (let groups = yield* len(c); groups > 0; groups--) {
    yield* str(c); // name
    yield* len(c); // last id ms
    yield* len(c); // last id seq
    if (type >= 19) yield* len(c); // entries read
    for (let pel = yield* len(c); pel > 0; pel--) {
      yield* skip(c, 16 + 8); // raw id, delivery time
      yield* len(c); // delivery count
    }
    for (let consumers = yield* len(c); consumers > 0; consumers--) {
      yield* str(c); // name
      yield* skip(c, type >= 21 ? 16 : 8); // seen time (and active time)
      for (let pel = yield* len(c); pel > 0; pel--) yield* skip(c, 16);
    }
  }
}

/** A module value in the annotated format (RDB_TYPE_MODULE_2, MODULE_AUX): typed fields until an EOF opcode. */
function* moduleValue(c: Cursor): Gen {
  for (;;) {
    const opcode = yield* len(c);
    switch (opcode) {
      case 0:
        return;
      case 1:
      case 2:
        yield* len(c);
        break;
      case 3:
        yield* skip(c, 4);
        break;
      case 4:
        yield* skip(c, 8);
        break;
      case 5:
        yield* str(c);
        break;
      default:
        throw new UnparsedError(`module field opcode ${opcode}`);
    }
  }
}

function* len(c: Cursor): Gen<number> {
  let n: number;
  while ((n = tryLength(c)) === NEED) yield;
  return n;
}

/** Skips one string (raw, integer-encoded or LZF-compressed) without buffering it. */
function* str(c: Cursor): Gen {
  let n: number;
  while ((n = tryStringHeader(c)) === NEED) yield;
  yield* skip(c, n);
}

/** A string's text when short, uncompressed and complete; skipped (undefined) otherwise. */
function* smallString(c: Cursor, max = 4096): Gen<string | undefined> {
  let n: number;
  while ((n = tryStringHeader(c)) === NEED) yield;
  if (c.intValue !== undefined) {
    const text = String(c.intValue);
    yield* skip(c, n);
    return text;
  }
  if (c.compressed || n > max) {
    yield* skip(c, n);
    return undefined;
  }
  while (c.buf.length - c.pos < n) yield;
  const text = c.buf.toString("latin1", c.pos, c.pos + n);
  c.pos += n;
  return text;
}

function* skip(c: Cursor, n: number): Gen {
  let left = n;
  for (;;) {
    const k = Math.min(left, c.buf.length - c.pos);
    c.pos += k;
    left -= k;
    if (left === 0) return;
    yield;
  }
}

/** Reads a length (1, 2, 5 or 9 bytes) or returns NEED without consuming anything. */
function tryLength(c: Cursor): number {
  const buf = c.buf;
  const p = c.pos;
  const available = buf.length - p;
  if (available < 1) return NEED;
  const first = buf[p]!;
  switch (first >> 6) {
    case 0:
      c.pos = p + 1;
      return first & 0x3f;
    case 1:
      if (available < 2) return NEED;
      c.pos = p + 2;
      return ((first & 0x3f) << 8) | buf[p + 1]!;
    case 2:
      if (first === 0x80) {
        if (available < 5) return NEED;
        c.pos = p + 5;
        return buf.readUInt32BE(p + 1);
      }
      if (first === 0x81) {
        if (available < 9) return NEED;
        c.pos = p + 9;
        return Number(buf.readBigUInt64BE(p + 1));
      }
      throw new UnparsedError(`invalid length byte 0x${first.toString(16)} at byte ${c.base + p}`);
    default:
      throw new UnparsedError(`encoded value where a length belongs, at byte ${c.base + p}`);
  }
}

/**
 * Reads a string's header and returns how many payload bytes follow (NEED, consuming nothing, when the header is
 * not all there yet). Integer encodings set `intValue`, LZF sets `compressed`.
 */
function tryStringHeader(c: Cursor): number {
  const buf = c.buf;
  const p = c.pos;
  if (p >= buf.length) return NEED;
  c.intValue = undefined;
  c.compressed = false;
  const first = buf[p]!;
  if (first >> 6 !== 3) return tryLength(c);
  const available = buf.length - p;
  switch (first & 0x3f) {
    case 0: // int8
      if (available < 2) return NEED;
      c.intValue = buf.readInt8(p + 1);
      c.pos = p + 1;
      return 1;
    case 1: // int16
      if (available < 3) return NEED;
      c.intValue = buf.readInt16LE(p + 1);
      c.pos = p + 1;
      return 2;
    case 2: // int32
      if (available < 5) return NEED;
      c.intValue = buf.readInt32LE(p + 1);
      c.pos = p + 1;
      return 4;
    case 3: {
      // LZF: compressed length, uncompressed length, compressed bytes
      c.pos = p + 1;
      const compressedLength = tryLength(c);
      if (compressedLength === NEED || tryLength(c) === NEED) {
        c.pos = p;
        return NEED;
      }
      c.compressed = true;
      return compressedLength;
    }
    default:
      throw new UnparsedError(`unknown string encoding 0x${first.toString(16)} at byte ${c.base + p}`);
  }
}
