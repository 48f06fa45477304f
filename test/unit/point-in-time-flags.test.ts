/**
 * The point-in-time restore's command line (#19): which flags `--physical` brings to `--create` and `--restore`,
 * and how `--target-time`/`--target-lsn` are read (domain/recovery-target.ts) and handed to PostgreSQL.
 */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { refusedFlag } from "../../src/commands/action-flags.js";
import { FieldError } from "../../src/domain/errors.js";
import { recoveryTargetOf } from "../../src/domain/recovery-target.js";
import { checkPointInTimeFields } from "../../src/engines/postgres/physical-engine.js";
import { postgresTime } from "../../src/engines/postgres/physical-restore.js";
import { loadEngines } from "../../src/engines/registry.js";

// The flag table reads the engines' own flags: a command loads its engine before it parses, so do these tests.
before(() => loadEngines());

describe("point-in-time flags", () => {
  test("GIVEN --physical WHEN creating or restoring THEN its flags apply, and only with it", () => {
    assert.equal(refusedFlag("postgresql", "create", ["--physical", "--target"]), undefined);
    assert.equal(
      refusedFlag("postgresql", "restore", [
        "--physical",
        "--to-data-dir",
        "--target",
        "--target-time",
        "--id",
      ]),
      undefined,
    );
    assert.equal(
      refusedFlag("postgresql", "restore", ["--id", "--target-time"]),
      "--target-time applies to --restore only with --in-cluster or --physical",
    );
    assert.equal(
      refusedFlag("postgresql", "restore", ["--id", "--to-data-dir"]),
      "--to-data-dir applies to --restore only with --in-cluster or --physical",
    );
    assert.match(refusedFlag("redis", "restore", ["--physical"]) ?? "", /--physical does not apply/);
    assert.match(
      refusedFlag("postgresql", "list", ["--physical"]) ?? "",
      /--physical does not apply to --list/,
    );
  });

  test("GIVEN target fields WHEN read THEN a time needs its zone, an LSN its form, and not both", () => {
    assert.deepEqual(recoveryTargetOf({}), { kind: "latest" });
    assert.deepEqual(recoveryTargetOf({ targetTime: "2026-12-05T13:20:00.123456Z" }), {
      kind: "time",
      time: "2026-12-05T13:20:00.123456Z",
    });
    assert.deepEqual(recoveryTargetOf({ targetTime: "2026-12-05 13:20:00+02:00" }).kind, "time");
    assert.deepEqual(recoveryTargetOf({ targetLsn: "0/16b3748" }), { kind: "lsn", lsn: "0/16B3748" });
    for (const [fields, field] of [
      [{ targetTime: "2026-12-05T13:20:00" }, "targetTime"],
      [{ targetTime: "yesterday" }, "targetTime"],
      [{ targetLsn: "16B3748" }, "targetLsn"],
      [{ targetTime: "2026-12-05T13:20:00Z", targetLsn: "0/1" }, "targetTime"],
    ] as const) {
      assert.throws(
        () => recoveryTargetOf(fields),
        (e: unknown) => e instanceof FieldError && e.field === field,
      );
    }
  });

  test("GIVEN pg restore fields WHEN --physical THEN a data directory is required and logical modes refused", () => {
    assert.throws(
      () => checkPointInTimeFields({ physical: true }),
      (e: unknown) => e instanceof FieldError && e.field === "toDataDir",
    );
    assert.throws(
      () => checkPointInTimeFields({ physical: true, toDataDir: "/x", toDatabase: "y" }),
      (e: unknown) => e instanceof FieldError && e.field === "toDatabase",
    );
    assert.deepEqual(checkPointInTimeFields({ physical: true, toDataDir: "/x" }), { kind: "latest" });
  });

  test("GIVEN a UTC time WHEN handed to the recovering server THEN Z becomes +00, which it parses at startup", () => {
    assert.equal(postgresTime("2026-12-05T13:20:00.123456Z"), "2026-12-05 13:20:00.123456+00");
    assert.equal(postgresTime("2026-12-05T13:20:00+02:00"), "2026-12-05 13:20:00+02:00");
  });
});
