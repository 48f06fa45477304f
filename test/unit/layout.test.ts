import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { layout } from "../../src/storage/layout.js";
import { backupIdTime, isSafeSegment, newBackupId } from "../../src/domain/backup.js";

describe("key layout", () => {
  const ref = {
    cluster: "cnvrg.app",
    engine: "postgresql" as const,
    backupId: "postgresql-20261125T133000Z-abc123",
  };

  test("GIVEN a backup WHEN keys are built THEN they follow docs/design.md §7", () => {
    assert.equal(
      layout.statefileKey("capsule", ref),
      "capsule/cnvrg.app/postgresql/postgresql-20261125T133000Z-abc123/statefile.json",
    );
    assert.equal(
      layout.artifactKey("p/q", ref, "dump.pgcustom"),
      "p/q/cnvrg.app/postgresql/postgresql-20261125T133000Z-abc123/dump.pgcustom",
    );
    assert.equal(layout.requestsPrefix("capsule", "cnvrg.app"), "capsule/cnvrg.app/requests/");
  });

  test("GIVEN a request id WHEN its keys are built THEN the request and its outcome sit in the requests folder; an unsafe id is refused", () => {
    assert.equal(layout.requestKey("capsule", "cnvrg.app", "req-1"), "capsule/cnvrg.app/requests/req-1.json");
    assert.equal(
      layout.outcomeKey("capsule", "cnvrg.app", "req-1"),
      "capsule/cnvrg.app/requests/req-1.outcome.json",
    );
    assert.throws(() => layout.requestKey("capsule", "cnvrg.app", "../x"), { code: "CAPSULE_CONFIG" });
  });

  test("GIVEN a statefile key WHEN parsed THEN it yields the backup; other keys yield nothing", () => {
    assert.deepEqual(layout.parseStatefileKey("capsule", layout.statefileKey("capsule", ref)), ref);
    const cases = [
      "capsule/cnvrg.app/postgresql/postgresql-20261125T133000Z-abc123/dump.pgcustom",
      "capsule/cnvrg.app/mysql/x/statefile.json",
      "other/cnvrg.app/postgresql/x/statefile.json",
      "capsule/cnvrg.app/requests/r1.json",
      "capsule/../postgresql/x/statefile.json",
      "capsule/cnvrg.app/postgresql/a/b/statefile.json",
    ];
    for (const key of cases) assert.equal(layout.parseStatefileKey("capsule", key), undefined, key);
  });

  test("GIVEN times WHEN ids are minted THEN they sort by time and carry it", () => {
    const a = newBackupId("redis", new Date("2026-01-02T03:04:05.678Z"), "ffffff");
    const b = newBackupId("redis", new Date("2026-01-02T03:04:06.000Z"), "000000");
    assert.equal(a, "redis-20260102T030405Z-ffffff");
    assert.ok(a < b);
    assert.equal(backupIdTime(a), "2026-01-02T03:04:05.000Z");
    assert.notEqual(newBackupId("redis"), newBackupId("redis"));
  });

  test("GIVEN segment candidates WHEN checked THEN only key-safe ones pass", () => {
    for (const ok of ["local", "ns.app", "a_b-c", "A1"]) assert.ok(isSafeSegment(ok), ok);
    for (const bad of ["", ".", "..", "a/b", "-x", ".hidden", "a..b", "a b", "é"])
      assert.ok(!isSafeSegment(bad), bad);
  });
});
