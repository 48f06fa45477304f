import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { compareRowCounts } from "../../src/engines/postgres/fingerprint.js";
import { derivedDatabaseName } from "../../src/engines/postgres/restore.js";
import { translatePgError } from "../../src/engines/postgres/sql.js";
import { assertClientCanDump } from "../../src/engines/postgres/tools.js";

describe("PostgreSQL engine rules", () => {
  test("GIVEN a server that accepts only TLS WHEN capsule connects in plain text THEN the error says how to turn verified TLS on", () => {
    const conn = { host: "db", port: 5432, database: "app", user: "backup", password: "pw-not-shown" };
    const rejected = {
      code: "28000",
      message: 'no pg_hba.conf entry for host "10.0.0.7", user "backup", database "app", no encryption',
    };
    assert.match(
      translatePgError(rejected, conn, "app").message,
      /postgresql:\/\/backup@db:5432\/app: the server accepts only TLS connections: pass --sslmode verify-full --sslrootcert/,
    );
    const wrongPassword = { code: "28P01", message: "password authentication failed for user" };
    assert.match(
      translatePgError(wrongPassword, conn, "app").message,
      /authentication failed for user "backup"$/,
    );
  });

  test("GIVEN pg_dump older than the server WHEN checked THEN it fails naming the client package to install", () => {
    assert.throws(
      () => assertClientCanDump("pg_dump", 15, 160004),
      /pg_dump 15 cannot dump PostgreSQL 16: install postgresql-client-16/,
    );
    assert.doesNotThrow(() => assertClientCanDump("pg_dump", 16, 150018));
    assert.doesNotThrow(() => assertClientCanDump("pg_dump", 15, 150018));
  });

  test("GIVEN a long database name WHEN a scratch or kept name is derived THEN it fits 63 bytes and keeps the suffix", () => {
    const suffix = "_pre_restore_20261125133000";
    assert.equal(derivedDatabaseName("app", suffix), `app${suffix}`);
    const long = derivedDatabaseName("d".repeat(70), suffix);
    assert.ok(Buffer.byteLength(long) <= 63);
    assert.ok(long.endsWith(suffix));
    const unicode = derivedDatabaseName("données_".repeat(8), suffix);
    assert.ok(Buffer.byteLength(unicode) <= 63 && unicode.endsWith(suffix));
  });

  const cases: Array<[string, Record<string, number>, Record<string, number>, boolean, string[]]> = [
    ["equal", { "public.a": 1 }, { "public.a": 1 }, false, []],
    ["a row lost", { "public.a": 2 }, { "public.a": 1 }, false, ["public.a: 1 rows, backup has 2"]],
    ["a table missing", { "public.a": 2 }, {}, false, ["public.a: missing (backup has 2 rows)"]],
    ["an extra table", {}, { "public.b": 0 }, false, ["public.b: not in the backup (has 0 rows)"]],
    ["an extra table in place", {}, { "public.b": 0 }, true, []],
  ];
  for (const [name, expected, actual, allowExtra, differences] of cases) {
    test(`GIVEN ${name} WHEN row counts are compared THEN the differences say so`, () => {
      assert.deepEqual(compareRowCounts(expected, actual, { allowExtraTables: allowExtra }), differences);
    });
  }
});
