import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { planRetention, type RetentionPolicy } from "../../src/storage/retention.js";
import { daily, entry } from "../support/entries.js";

const NOW = new Date("2026-11-25T12:00:00.000Z");
const ids = (decisions: Array<{ backupId: string }>) => decisions.map((d) => d.backupId).sort();

describe("planRetention", () => {
  test("GIVEN 10 daily successes and keepLast 3 WHEN planned THEN the newest 3 stay and 7 go", () => {
    const entries = daily(10, "2026-11-25T00:00:00Z");
    const plan = planRetention(entries, { keepLast: 3 }, NOW);
    assert.deepEqual(ids(plan.keep), ids(entries.slice(0, 3).map((e) => e.ref)));
    assert.equal(plan.delete.length, 7);
    assert.ok(plan.keep.some((d) => d.reason.includes("newest succeeded")));
  });

  test("GIVEN a schedule that only failed for a month after 5 successes WHEN planned THEN no success is deleted", () => {
    const good = daily(5, "2026-10-20T00:00:00Z");
    const failures = daily(30, "2026-11-24T00:00:00Z", { status: "failed" });
    const plan = planRetention([...failures, ...good], { keepLast: 5, failedGraceHours: 72 }, NOW);
    for (const g of good)
      assert.ok(
        plan.keep.some((d) => d.backupId === g.ref.backupId),
        "a good backup was let go",
      );
    assert.ok(plan.delete.every((d) => d.state === "failed"));
    // Failures within the 72 h grace (36 h and 60 h old) are kept for diagnosis; the 28 older ones go.
    assert.equal(plan.delete.length, 28);
  });

  test("GIVEN only failed runs and keepLast 1 WHEN planned THEN nothing failed counts as good", () => {
    const plan = planRetention(daily(3, "2026-11-25T00:00:00Z", { status: "failed" }), { keepLast: 1 }, NOW);
    assert.ok(plan.keep.every((d) => !d.reason.includes("succeeded")));
  });

  test("GIVEN running and abandoned runs WHEN planned THEN running is always kept and abandoned is deleted after grace", () => {
    const running = entry({ status: "running", at: "2026-01-01T00:00:00Z" });
    const abandonedOld = entry({ status: "running", state: "abandoned", at: "2026-11-01T00:00:00Z" });
    const abandonedNew = entry({ status: "running", state: "abandoned", at: "2026-11-25T10:00:00Z" });
    const good = entry({ at: "2026-11-20T00:00:00Z" });
    const plan = planRetention([running, abandonedOld, abandonedNew, good], { keepLast: 1 }, NOW);
    assert.deepEqual(ids(plan.keep), ids([running.ref, abandonedNew.ref, good.ref]));
    assert.deepEqual(ids(plan.delete), [abandonedOld.ref.backupId]);
  });

  test("GIVEN a half-done delete WHEN planned THEN it is finished", () => {
    const deleting = entry({ status: "deleting", at: "2026-11-24T00:00:00Z" });
    const plan = planRetention([deleting, entry({ at: "2026-11-23T00:00:00Z" })], { keepLast: 1 }, NOW);
    assert.deepEqual(ids(plan.delete), [deleting.ref.backupId]);
  });

  test("GIVEN the newest success is old WHEN every GFS window is empty THEN it is still kept", () => {
    const only = entry({ at: "2020-01-01T00:00:00Z" });
    const plan = planRetention([only], { keepLast: 1, keepDaily: 7 }, NOW);
    assert.deepEqual(ids(plan.keep), [only.ref.backupId]);
  });

  const gfsCases: Array<{ name: string; policy: RetentionPolicy; kept: number }> = [
    // 90 daily backups from 2026-11-25 back to 2026-08-28.
    { name: "keepDaily 7", policy: { keepLast: 1, keepDaily: 7 }, kept: 7 },
    { name: "keepWeekly 4 (+ newest)", policy: { keepLast: 1, keepWeekly: 4 }, kept: 4 },
    { name: "keepMonthly 3", policy: { keepLast: 1, keepMonthly: 3 }, kept: 3 },
    // Daily keeps Nov 19–25 (W47's and W48's picks among them); weekly adds W46 and W45; monthly adds Oct, Sep, Aug.
    {
      name: "daily 7 + weekly 4 + monthly 4 overlap",
      policy: { keepLast: 2, keepDaily: 7, keepWeekly: 4, keepMonthly: 4 },
      kept: 7 + 2 + 3,
    },
  ];
  for (const c of gfsCases) {
    test(`GIVEN 90 daily backups WHEN ${c.name} THEN ${c.kept} are kept`, () => {
      const plan = planRetention(daily(90, "2026-11-25T01:00:00Z"), c.policy, NOW);
      assert.equal(plan.keep.length, c.kept, JSON.stringify(plan.keep.map((k) => k.reason)));
      assert.equal(plan.keep.length + plan.delete.length, 90);
    });
  }

  test("GIVEN two backups in one day, the older verified WHEN keepDaily keeps one per day THEN the verified one is kept", () => {
    const newest = entry({ at: "2026-11-25T10:00:00Z" });
    const verified = entry({ at: "2026-11-24T10:00:00Z", verification: { status: "verified" } });
    const sameDayUnverified = entry({ at: "2026-11-24T20:00:00Z" });
    const plan = planRetention([newest, sameDayUnverified, verified], { keepLast: 1, keepDaily: 2 }, NOW);
    assert.deepEqual(ids(plan.keep), ids([newest.ref, verified.ref]));
  });

  test("GIVEN backups of two targets WHEN planned together THEN it refuses rather than touch another's keys", () => {
    assert.throws(
      () => planRetention([entry({ target: "a" }), entry({ target: "b" })], { keepLast: 1 }, NOW),
      /more than one cluster\/target/,
    );
    assert.throws(
      () => planRetention([entry({ cluster: "x.a" }), entry({ cluster: "y.b" })], { keepLast: 1 }, NOW),
      /more than one cluster\/target/,
    );
  });

  test("GIVEN keepLast 0 WHEN planned THEN the policy is rejected naming the field", () => {
    assert.throws(
      () => planRetention([], { keepLast: 0 }, NOW),
      /keepLast must be an integer >= 1 \(got 0\)/,
    );
  });
});
