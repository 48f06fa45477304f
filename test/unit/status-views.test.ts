/** The per-target figures the alert rules compare: failures in a row and the interval observed between runs. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { expectedInterval, targetStats } from "../../src/status/views.js";
import { entry } from "../support/entries.js";

const HOUR = 3600;
const at = (hoursAgo: number) =>
  new Date(Date.parse("2026-11-25T12:00:00Z") - hoursAgo * HOUR * 1000).toISOString();

describe("status views: alert inputs", () => {
  for (const [name, starts, expected] of [
    ["no run", [], undefined],
    ["one run", [100], undefined],
    ["hourly runs", [4 * HOUR, 3 * HOUR, 2 * HOUR, HOUR], HOUR],
    [
      "a retry 5 minutes after a run does not halve the interval",
      [0, -300, -HOUR - 300, -2 * HOUR - 300],
      HOUR,
    ],
    ["a missed run does not double it", [0, -6 * HOUR, -12 * HOUR, -24 * HOUR, -30 * HOUR], 6 * HOUR],
    ["two gaps: their mean", [0, -HOUR, -3 * HOUR], 1.5 * HOUR],
  ] as const) {
    test(`GIVEN ${name} WHEN the interval is measured THEN ${String(expected)}`, () => {
      assert.equal(expectedInterval(starts), expected);
    });
  }

  test("GIVEN a target's runs newest first WHEN summarised THEN failures after the newest success count as in a row; manual runs are no interval", () => {
    const { stats } = targetStats([
      entry({ at: at(0), status: "failed" }),
      entry({ at: at(1), status: "running", state: "abandoned" }),
      entry({ at: at(2), status: "failed", trigger: { type: "manual" } }),
      entry({ at: at(6) }),
      entry({ at: at(12), status: "failed" }),
      entry({ at: at(18) }),
    ]);
    assert.equal(stats.length, 1);
    assert.equal(stats[0]?.consecutiveFailures, 3, "the failure before the success is not in the streak");
    assert.equal(stats[0]?.failedRuns, 4);
    // Scheduled starts 0, 1, 6, 12, 18 h ago: gaps 1, 5, 6, 6 → median 5.5 h.
    assert.equal(stats[0]?.expectedIntervalSeconds, 5.5 * HOUR);
  });

  test("GIVEN a newest success WHEN summarised THEN no failure is in a row", () => {
    const { stats } = targetStats([entry({ at: at(0) }), entry({ at: at(24), status: "failed" })]);
    assert.equal(stats[0]?.consecutiveFailures, 0);
    assert.equal(stats[0]?.expectedIntervalSeconds, 24 * HOUR);
  });
});
