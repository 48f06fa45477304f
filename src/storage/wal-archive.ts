/**
 * One target's streamed WAL in the bucket (docs/adr/0021): segments compressed with zstd (with its content checksum,
 * so a damaged segment fails to decode instead of replaying garbage), age-encrypted when the store encrypts, under
 * the keys layout.ts builds. The streamer writes through it (`WalSink`), a restore reads through it (`WalSource`),
 * retention and the integrity sweep list and delete through it. Nothing else touches a WAL key.
 */
import { Readable } from "node:stream";
import { promisify } from "node:util";
import { constants, zstdCompress, zstdDecompress } from "node:zlib";
import { CapsuleError, ErrorCode, NotFoundError } from "../domain/errors.js";
import {
  historyFileName,
  parseWalFileName,
  walFileName,
  type WalHead,
  type WalListing,
  type WalSegmentObject,
  type WalSink,
  type WalSource,
} from "../domain/wal.js";
import { decryptStream, encryptStream } from "./age.js";
import { layout } from "./layout.js";
import { getBytes, type ObjectStore, readAll, unlessMissing } from "./object-store.js";

const compress = promisify(zstdCompress);
const decompress = promisify(zstdDecompress);

/** Level 3 (zstd's default) with the frame checksum: WAL of a busy server compresses 3–5×, zero padding to nothing. */
const ZSTD_PARAMS = {
  params: { [constants.ZSTD_c_compressionLevel]: 3, [constants.ZSTD_c_checksumFlag]: 1 },
};

export interface WalArchiveOptions {
  /** age recipients: when set, every segment and history file is encrypted to them. */
  readonly encryptTo?: readonly string[] | undefined;
  /** The identities that open encrypted segments, read when the first one is fetched. */
  readonly identities?: () => Promise<readonly string[]>;
}

export class WalArchive implements WalSink, WalSource {
  private readonly encryptTo: readonly string[] | undefined;

  constructor(
    private readonly objects: ObjectStore,
    private readonly prefix: string,
    readonly cluster: string,
    readonly target: string,
    private readonly options: WalArchiveOptions = {},
  ) {
    this.encryptTo = options.encryptTo?.length ? options.encryptTo : undefined;
    // Checked now, so a bad target fails before the streamer connects to anything.
    layout.walPrefix(prefix, cluster, target);
  }

  /** Where the WAL goes, for messages. */
  get description(): string {
    return `${this.objects.description} ${layout.walPrefix(this.prefix, this.cluster, this.target)}`;
  }

  async putSegment(segment: Parameters<WalSink["putSegment"]>[0]): Promise<void> {
    const { timeline, segno, segmentSize, bytes, partial } = segment;
    if (bytes.length > segmentSize || (!partial && bytes.length !== segmentSize)) {
      throw new RangeError(
        `WAL segment ${walFileName(timeline, segno, segmentSize)}: ${bytes.length} bytes for a ${segmentSize}-byte segment`,
      );
    }
    const name = walFileName(timeline, segno, segmentSize);
    // PostgreSQL reads only whole segments; zeros past the last record read as the end of the WAL.
    const whole = partial && bytes.length < segmentSize ? padded(bytes, segmentSize) : bytes;
    const stored = await this.seal(await compress(whole, ZSTD_PARAMS));
    const encrypted = this.encryptTo !== undefined;
    await this.objects.put(this.segmentKey(name, { partial, encrypted }), stored, {
      sizeHint: stored.length,
    });
    if (!partial) {
      // The complete segment supersedes its partials, encrypted or not (the settings may have changed).
      for (const enc of [false, true])
        await this.objects.delete(this.segmentKey(name, { partial: true, encrypted: enc }));
    }
  }

  async putHistory(timeline: number, content: Uint8Array): Promise<void> {
    // History files are tiny and PostgreSQL reads them as text: stored as written, never encrypted or compressed,
    // since they hold only timeline numbers, LSNs and reasons.
    await this.objects.put(this.historyKey(timeline), Buffer.from(content));
  }

  async writeHead(head: WalHead): Promise<void> {
    await this.objects.put(this.headKey(), `${JSON.stringify(head, null, 2)}\n`, {
      contentType: "application/json",
    });
  }

  async readHead(): Promise<WalHead | undefined> {
    try {
      const parsed = JSON.parse((await getBytes(this.objects, this.headKey())).toString()) as WalHead;
      if (
        parsed?.version !== 1 ||
        typeof parsed.archivedLsn !== "string" ||
        typeof parsed.segmentSize !== "number"
      ) {
        throw new CapsuleError(
          ErrorCode.InvalidStatefile,
          `${this.headKey()} is not a WAL head capsule wrote`,
        );
      }
      return parsed;
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      if (error instanceof SyntaxError)
        throw new CapsuleError(ErrorCode.InvalidStatefile, `${this.headKey()}: not valid JSON`);
      throw error;
    }
  }

  /**
   * One listing of the target's WAL folder. Segment numbers are read with the head's segment size (the default
   * when there is no head yet); keys capsule did not write are ignored.
   */
  async listing(segmentSizeHint?: number): Promise<WalListing> {
    const head = await this.readHead();
    const segmentSize = head?.segmentSize ?? segmentSizeHint ?? 16 * 1024 * 1024;
    const segments: WalSegmentObject[] = [];
    const historyTimelines: number[] = [];
    for await (const object of this.objects.list(layout.walPrefix(this.prefix, this.cluster, this.target))) {
      const key = layout.parseWalKey(this.prefix, this.cluster, this.target, object.key);
      if (key?.kind === "history") historyTimelines.push(parseInt(key.historyFile.slice(0, 8), 16));
      if (key?.kind !== "segment") continue;
      const parsed = parseWalFileName(key.walFile, segmentSize);
      if (!parsed) continue;
      segments.push({
        ...parsed,
        name: key.walFile,
        partial: key.partial,
        encrypted: key.encrypted,
        sizeBytes: object.size,
        ...(object.lastModified ? { storedAt: object.lastModified } : {}),
      });
    }
    segments.sort(
      (a, b) => a.timeline - b.timeline || a.segno - b.segno || Number(a.partial) - Number(b.partial),
    );
    return { segments, historyTimelines: historyTimelines.sort((a, b) => a - b), ...(head ? { head } : {}) };
  }

  async fetchSegment(segment: WalSegmentObject, segmentSize: number): Promise<Buffer> {
    const encrypted = await this.encryptedKeyOf(segment);
    const key = this.segmentKey(segment.name, { partial: segment.partial, encrypted });
    const stored = await this.open(await this.objects.get(key), encrypted, key);
    let bytes: Buffer;
    try {
      bytes = await decompress(stored);
    } catch (error) {
      throw new CapsuleError(
        ErrorCode.ChecksumMismatch,
        `WAL segment ${key} does not decode: ${(error as Error).message}`,
      );
    }
    if (bytes.length !== segmentSize) {
      throw new CapsuleError(
        ErrorCode.ChecksumMismatch,
        `WAL segment ${key} holds ${bytes.length} bytes, not the ${segmentSize} of a segment`,
      );
    }
    return bytes;
  }

  async fetchHistory(timeline: number): Promise<Buffer | undefined> {
    return unlessMissing(getBytes(this.objects, this.historyKey(timeline)));
  }

  /** Deletes segments (retention). A missing one is not an error: deletes are idempotent. */
  async deleteSegments(segments: readonly WalSegmentObject[]): Promise<void> {
    for (const segment of segments) {
      // A listed segment says how it is stored: one DELETE. Otherwise both forms, as either may be there.
      const forms = segment.encrypted === undefined ? [false, true] : [segment.encrypted];
      for (const encrypted of forms)
        await this.objects.delete(this.segmentKey(segment.name, { partial: segment.partial, encrypted }));
    }
  }

  private segmentKey(walFile: string, options: { partial: boolean; encrypted: boolean }): string {
    return layout.walSegmentKey(this.prefix, this.cluster, this.target, walFile, options);
  }

  private historyKey(timeline: number): string {
    return layout.walHistoryKey(this.prefix, this.cluster, this.target, historyFileName(timeline));
  }

  private headKey(): string {
    return layout.walHeadKey(this.prefix, this.cluster, this.target);
  }

  /** Whether the stored object is the encrypted one: tried as configured first, then the other way. */
  private async encryptedKeyOf(segment: WalSegmentObject): Promise<boolean> {
    if (segment.encrypted !== undefined) return segment.encrypted;
    const first = this.encryptTo !== undefined;
    for (const encrypted of [first, !first]) {
      const key = this.segmentKey(segment.name, { partial: segment.partial, encrypted });
      if (await this.objects.head(key)) return encrypted;
    }
    throw new NotFoundError(`WAL segment ${segment.name} is not in ${this.description}`);
  }

  private async seal(compressed: Buffer): Promise<Buffer> {
    if (!this.encryptTo) return compressed;
    return readAll(await encryptStream(Readable.from([compressed]), this.encryptTo));
  }

  private async open(stored: Readable, encrypted: boolean, key: string): Promise<Buffer> {
    if (!encrypted) return readAll(stored);
    const identities = (await this.options.identities?.()) ?? [];
    if (identities.length === 0) {
      stored.destroy();
      throw new CapsuleError(ErrorCode.Config, `WAL segment ${key} is encrypted and no age identity is set`);
    }
    return readAll(
      await decryptStream(
        stored,
        identities,
        (why) => new CapsuleError(ErrorCode.ChecksumMismatch, `${key}: ${why}`),
      ),
    );
  }
}

function padded(bytes: Uint8Array, size: number): Buffer {
  const whole = Buffer.alloc(size);
  whole.set(bytes);
  return whole;
}
