/** The one socket-error mapping every adapter phrases its messages around. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { socketFailure } from "../../src/util/socket-error.js";

const withCode = (code: string) => Object.assign(new Error(`connect ${code}`), { code });

describe("socketFailure", () => {
  test("GIVEN the codes of a server that cannot be reached WHEN mapped THEN each is unreachable, named in the phrase", () => {
    for (const code of ["ECONNREFUSED", "ENOTFOUND", "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT", "EAI_AGAIN"])
      assert.deepEqual(socketFailure(withCode(code)), {
        kind: "unreachable",
        code,
        phrase: `cannot connect (${code})`,
      });
  });

  test("GIVEN a dropped connection WHEN mapped THEN it is a reset", () => {
    assert.equal(socketFailure(withCode("ECONNRESET"))?.phrase, "the connection was reset (ECONNRESET)");
    assert.equal(socketFailure(withCode("EPIPE"))?.kind, "reset");
  });

  test("GIVEN certificate errors WHEN mapped THEN each is an untrusted certificate", () => {
    for (const code of [
      "DEPTH_ZERO_SELF_SIGNED_CERT",
      "SELF_SIGNED_CERT_IN_CHAIN",
      "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
      "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
      "CERT_HAS_EXPIRED",
      "ERR_TLS_CERT_ALTNAME_INVALID",
    ])
      assert.equal(socketFailure(withCode(code))?.phrase, `TLS certificate not trusted (${code})`);
  });

  test("GIVEN a code only on the cause WHEN mapped THEN the cause's code counts", () => {
    const wrapped = Object.assign(new Error("socket hang up"), { cause: { code: "ECONNREFUSED" } });
    assert.equal(socketFailure(wrapped)?.kind, "unreachable");
  });

  test("GIVEN no socket code WHEN mapped THEN undefined", () => {
    for (const error of [
      new Error("x"),
      withCode("28P01"),
      withCode("EPROTO"),
      "ECONNREFUSED",
      undefined,
      null,
    ])
      assert.equal(socketFailure(error), undefined);
  });
});
