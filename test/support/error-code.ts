import assert from "node:assert/strict";

/** For `assert.rejects`: the error carries capsule's stable error code `expected`. */
export const withCode = (expected: string) => (error: unknown) => {
  assert.equal((error as { code?: string }).code, expected, String(error));
  return true;
};
