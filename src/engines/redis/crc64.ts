/**
 * CRC-64/Jones — the checksum Redis writes as the last 8 bytes of every RDB (version >= 5): reflected polynomial
 * 0xad93d23594c935a9, initial value 0, no final xor (check value for "123456789": 0xe9c6d914c4b8d9ca).
 *
 * JavaScript has no fast 64-bit integers, so the register is kept as two 32-bit halves, and the update is
 * slicing-by-8 (eight 256-entry tables, eight bytes per step) like Redis' own crcspeed: this check runs on every
 * byte of every backup and must not be what limits throughput.
 */

/** The reflected Jones polynomial, split into 32-bit halves. */
const POLY_HI = 0x95ac9329;
const POLY_LO = 0xac4bc9b5;

/** TABLES_LO[k * 256 + i], TABLES_HI[k * 256 + i]: table k of the slicing-by-8 scheme. */
const TABLES_LO = new Uint32Array(8 * 256);
const TABLES_HI = new Uint32Array(8 * 256);

for (let i = 0; i < 256; i++) {
  let lo = i;
  let hi = 0;
  for (let bit = 0; bit < 8; bit++) {
    const carry = lo & 1;
    lo = (lo >>> 1) | ((hi & 1) << 31);
    hi = hi >>> 1;
    if (carry) {
      lo ^= POLY_LO;
      hi ^= POLY_HI;
    }
  }
  TABLES_LO[i] = lo >>> 0;
  TABLES_HI[i] = hi >>> 0;
}
for (let k = 1; k < 8; k++) {
  for (let i = 0; i < 256; i++) {
    const prevLo = TABLES_LO[(k - 1) * 256 + i]!;
    const prevHi = TABLES_HI[(k - 1) * 256 + i]!;
    const index = prevLo & 0xff;
    TABLES_LO[k * 256 + i] = (((prevLo >>> 8) | (prevHi << 24)) ^ TABLES_LO[index]!) >>> 0;
    TABLES_HI[k * 256 + i] = ((prevHi >>> 8) ^ TABLES_HI[index]!) >>> 0;
  }
}

/** A running CRC-64/Jones. */
export class Crc64 {
  private lo = 0;
  private hi = 0;

  update(data: Uint8Array, start = 0, end = data.length): this {
    let lo = this.lo;
    let hi = this.hi;
    const T_LO = TABLES_LO;
    const T_HI = TABLES_HI;
    let p = start;
    for (; p + 8 <= end; p += 8) {
      const a = lo ^ (data[p]! | (data[p + 1]! << 8) | (data[p + 2]! << 16) | (data[p + 3]! << 24));
      const b = hi ^ (data[p + 4]! | (data[p + 5]! << 8) | (data[p + 6]! << 16) | (data[p + 7]! << 24));
      const i7 = 7 * 256 + (a & 0xff);
      const i6 = 6 * 256 + ((a >>> 8) & 0xff);
      const i5 = 5 * 256 + ((a >>> 16) & 0xff);
      const i4 = 4 * 256 + (a >>> 24);
      const i3 = 3 * 256 + (b & 0xff);
      const i2 = 2 * 256 + ((b >>> 8) & 0xff);
      const i1 = 256 + ((b >>> 16) & 0xff);
      const i0 = b >>> 24;
      lo = T_LO[i7]! ^ T_LO[i6]! ^ T_LO[i5]! ^ T_LO[i4]! ^ T_LO[i3]! ^ T_LO[i2]! ^ T_LO[i1]! ^ T_LO[i0]!;
      hi = T_HI[i7]! ^ T_HI[i6]! ^ T_HI[i5]! ^ T_HI[i4]! ^ T_HI[i3]! ^ T_HI[i2]! ^ T_HI[i1]! ^ T_HI[i0]!;
    }
    for (; p < end; p++) {
      const index = (lo ^ data[p]!) & 0xff;
      lo = ((lo >>> 8) | (hi << 24)) ^ T_LO[index]!;
      hi = (hi >>> 8) ^ T_HI[index]!;
    }
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
    return this;
  }

  /** The checksum as an unsigned 64-bit integer. */
  digest(): bigint {
    return (BigInt(this.hi) << 32n) | BigInt(this.lo);
  }

  /** The checksum in the byte order Redis stores it: little-endian. */
  digestBytes(): Buffer {
    const out = Buffer.alloc(8);
    out.writeUInt32LE(this.lo, 0);
    out.writeUInt32LE(this.hi, 4);
    return out;
  }
}

export function crc64(data: Uint8Array): bigint {
  return new Crc64().update(data).digest();
}
