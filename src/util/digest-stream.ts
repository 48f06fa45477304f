import { createHash, type Hash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";

/** The sha256 and the count of bytes handed to it in order; `onBytes` sees the running count and must not throw. */
export class ByteDigest {
  private readonly hash: Hash = createHash("sha256");
  private count = 0;
  private digestHex: string | undefined;

  constructor(private readonly onBytes?: (total: number) => void) {}

  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.count += chunk.length;
    this.onBytes?.(this.count);
  }

  /** Ends the digest; `sha256` is readable from now on. */
  finish(): void {
    this.digestHex = this.hash.digest("hex");
  }

  get bytes(): number {
    return this.count;
  }

  get sha256(): string {
    if (this.digestHex === undefined) throw new Error("ByteDigest: sha256 read before the bytes ended");
    return this.digestHex;
  }
}

/** A pass-through that counts bytes and computes their sha256 on the way, so hashing costs no extra read. */
export class DigestStream extends Transform {
  private readonly digest: ByteDigest;

  /** `onBytes` sees the running byte count (progress display); it must not throw. */
  constructor(onBytes?: (total: number) => void) {
    super();
    this.digest = new ByteDigest(onBytes);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.digest.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.digest.finish();
    callback();
  }

  get bytes(): number {
    return this.digest.bytes;
  }

  /** The hex sha256 of everything that passed, available once the stream has ended. */
  get sha256(): string {
    return this.digest.sha256;
  }
}

/**
 * A pass-through that fails the stream at its end when the bytes do not hash to `expected`, so a consumer that
 * streams straight into a database sees an error before it commits anything.
 */
export class VerifyingStream extends DigestStream {
  constructor(
    private readonly expected: { sha256: string; sizeBytes: number },
    private readonly onMismatch: (actual: { sha256: string; sizeBytes: number }) => Error,
    onBytes?: (total: number) => void,
  ) {
    super(onBytes);
  }

  override _flush(callback: TransformCallback): void {
    super._flush(() => {
      const actual = { sha256: this.sha256, sizeBytes: this.bytes };
      const matches = actual.sha256 === this.expected.sha256 && actual.sizeBytes === this.expected.sizeBytes;
      callback(matches ? null : this.onMismatch(actual));
    });
  }
}
