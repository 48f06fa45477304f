import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { cronProblem, parsePeriod, periodToCron } from "../../src/plan/schedule.js";

/** The cron of a period string for a seed, masking the spread offsets so the shape can be compared. */
const shape = (period: string, seed = "c/t") =>
  periodToCron(parsePeriod(period) as number, seed).replace(/\b\d+\b/g, (n, offset: number, all: string) =>
    // keep steps and fixed ranges ends (after "/" or "-"), mask the offsets
    all[offset - 1] === "/" || all[offset - 1] === "-" ? n : "N",
  );

describe("period → cron", () => {
  const cases: Array<[string, string]> = [
    ["30s", "* * * * *"],
    ["1m", "* * * * *"],
    ["15m", "N-59/15 * * * *"],
    ["45m", "N-59/30 * * * *"],
    ["90m", "N * * * *"],
    ["6h", "N N-23/6 * * *"],
    ["5h", "N N-23/4 * * *"],
    ["12h", "N N-23/12 * * *"],
    ["24h", "N N * * *"],
    ["36h", "N N * * *"],
    ["1d", "N N * * *"],
    ["3d", "N N * * *"],
    ["7d", "N N * * N"],
    ["14d", "N N * * N"],
    ["31d", "N N N * *"],
  ];
  for (const [period, expected] of cases) {
    test(`GIVEN period ${period} WHEN mapped THEN the cron is "${expected}" (never less often than asked)`, () => {
      assert.equal(shape(period), expected);
      assert.equal(cronProblem(periodToCron(parsePeriod(period) as number, "c/t")), undefined);
    });
  }

  for (const bad of ["every day", "24", "0h", "1w", "-5m", " 24h", "1.5h", ""]) {
    test(`GIVEN period ${JSON.stringify(bad)} WHEN parsed THEN it is refused with the expected syntax`, () => {
      const result = parsePeriod(bad);
      assert.ok(typeof result === "object" && result.reason.includes("<number><s|m|h|d>"));
    });
  }

  test("GIVEN the same target WHEN mapped twice THEN the cron is the same (stable spread)", () => {
    assert.equal(periodToCron(86_400, "cnvrg.app/postgresql"), periodToCron(86_400, "cnvrg.app/postgresql"));
    assert.equal(
      periodToCron(86_400, "cnvrg.app/postgresql"),
      "31 9 * * *",
      "a changed spread rewrites every CronJob",
    );
  });

  test("GIVEN 100 daily targets WHEN mapped THEN they start over more than one minute and many hours", () => {
    const crons = Array.from({ length: 100 }, (_, i) => periodToCron(86_400, `cluster-${i}.app/postgresql`));
    const minutes = new Set(crons.map((c) => c.split(" ")[0]));
    const slots = new Set(crons.map((c) => c.split(" ").slice(0, 2).join(" ")));
    assert.ok(minutes.size > 30, `only ${minutes.size} distinct minutes`);
    assert.ok(slots.size > 90, `only ${slots.size} distinct start times`);
  });

  test("GIVEN 100 targets every 15 minutes WHEN mapped THEN all 15 minute offsets are used", () => {
    const offsets = new Set(
      Array.from({ length: 100 }, (_, i) => periodToCron(900, `c${i}/redis`).split("-")[0]),
    );
    assert.equal(offsets.size, 15);
  });
});

describe("cron check", () => {
  const cases: Array<[string, string | undefined]> = [
    ["30 2 * * *", undefined],
    ["*/5 * * * 1-5", undefined],
    ["0 0 1,15 * MON", undefined],
    ["@daily", undefined],
    ["TZ=Europe/Paris 0 2 * * *", "must not set a time zone: capsule CronJobs always run in Etc/UTC"],
    ["0 2 * *", "must have 5 fields (minute hour day-of-month month day-of-week) or be a macro"],
    ["0 2 * * * *", "must have 5 fields (minute hour day-of-month month day-of-week) or be a macro"],
    ["0 2 ? * *", "has a field that is not a number, range, list, step or *"],
  ];
  for (const [cron, problem] of cases) {
    test(`GIVEN cron "${cron}" WHEN checked THEN ${problem ?? "it is accepted"}`, () => {
      assert.equal(cronProblem(cron), problem);
    });
  }
});
