import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Crc64, crc64 } from "../../src/engines/redis/crc64.js";

/** Redis' own test vectors (src/crc64.c crc64Test); the Lorem ipsum one includes the C string's NUL. */
const LOREM =
  "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore " +
  "magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo " +
  "consequat. Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla " +
  "pariatur. Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt mollit anim id est " +
  "laborum.\0";

describe("crc64 (Jones, as Redis uses it)", () => {
  const vectors: Array<{ input: Buffer; expected: bigint }> = [
    { input: Buffer.from("123456789"), expected: 0xe9c6d914c4b8d9can },
    { input: Buffer.from(LOREM), expected: 0xc7794709e69683b3n },
    { input: Buffer.alloc(0), expected: 0n },
  ];
  for (const { input, expected } of vectors) {
    test(`GIVEN ${input.length} bytes THEN the checksum is ${expected.toString(16)}`, () => {
      assert.equal(crc64(input), expected);
    });
  }

  test("GIVEN any split of the input THEN incremental updates give the one-shot checksum", () => {
    const data = Buffer.from(LOREM.repeat(3));
    const whole = crc64(data);
    for (const step of [1, 3, 7, 8, 9, 64, 1000]) {
      const c = new Crc64();
      for (let i = 0; i < data.length; i += step) c.update(data, i, Math.min(data.length, i + step));
      assert.equal(c.digest(), whole, `step ${step}`);
    }
  });

  test("GIVEN a checksum THEN its bytes are little-endian, as in an RDB trailer", () => {
    assert.equal(
      new Crc64().update(Buffer.from("123456789")).digestBytes().toString("hex"),
      "cad9b8c414d9c6e9",
    );
  });
});
