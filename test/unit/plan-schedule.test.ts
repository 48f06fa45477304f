import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parsePlans } from "../../src/plan/load.js";
import { mergePlans } from "../../src/plan/merge.js";
import { PlanError } from "../../src/plan/plan-error.js";
import { cronProblem, parsePeriod, periodToCron } from "../../src/plan/schedule.js";
import { capsule } from "../support/cli.js";

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
    ["0 9 * jan,jul mon-fri", undefined],
    ["@daily", undefined],
    // Kubernetes (robfig/cron) reads `?` as `*`.
    ["0 2 ? * *", undefined],
    ["TZ=Europe/Paris 0 2 * * *", "must not set a time zone: capsule CronJobs always run in Etc/UTC"],
    ["CRON_TZ=UTC 0 2 * * *", "must not set a time zone: capsule CronJobs always run in Etc/UTC"],
    ["0 2 * *", "must have 5 fields (minute hour day-of-month month day-of-week) or be a macro"],
    ["0 2 * * * *", "must have 5 fields (minute hour day-of-month month day-of-week) or be a macro"],
    // issue #16: these went into the CronJob unchecked.
    ["61 25 * * *", "minute 61 is out of range 0-59"],
    ["0 2 * * 8", "day-of-week 8 is out of range 0-6"],
    ["0 24 * * *", "hour 24 is out of range 0-23"],
    ["0 0 0 * *", "day-of-month 0 is out of range 1-31"],
    ["0 0 * 13 *", "month 13 is out of range 1-12"],
    ["1,2,61 * * * *", "minute 61 is out of range 0-59"],
    ["50-70 * * * *", "minute 70 is out of range 0-59"],
    // Kubernetes has no 7 for Sunday (cron-parser has).
    ["0 2 * * 7", "day-of-week 7 is out of range 0-6"],
    // Quartz and Jenkins extensions cron-parser accepts and Kubernetes does not.
    ["0 0 L * *", "day-of-month L is not a number, range, list, step, * or ?"],
    ["0 0 * * 1#2", "day-of-week 1#2 is not a number, range, list, step, * or ?"],
    ["H 0 * * *", "minute H is not a number, range, list, step, * or ?"],
    ["0 mon * * *", "hour mon is not a number, range, list, step, * or ?"],
    [
      "@weekdays",
      "macro @weekdays is not one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly",
    ],
  ];
  for (const [cron, problem] of cases) {
    test(`GIVEN cron "${cron}" WHEN checked THEN ${problem ?? "it is accepted"}`, () => {
      assert.equal(cronProblem(cron), problem);
    });
  }

  // The parser's own wording follows the field it names; only the field is asserted.
  const parserCases: Array<[string, RegExp]> = [
    ["5-1 * * * *", /^minute 5-1 is invalid: /],
    ["*/0 * * * *", /^minute \*\/0 is invalid: /],
    ["0 0 * foo *", /^month foo is invalid: /],
    ["0 0 31 2 *", /^never fires: /],
  ];
  for (const [cron, problem] of parserCases) {
    test(`GIVEN cron "${cron}" WHEN checked THEN it is refused naming ${problem.source}`, () => {
      assert.match(cronProblem(cron) ?? "accepted", problem);
    });
  }
});

describe("schedules in plans", () => {
  const planText = (cron: string) => `apiVersion: capsule.cnvrg.io/v1
kind: BackupPlan
metadata: { cluster: ns.app }
spec:
  storage: { bucket: backups }
  targets:
    - { name: pg, engine: postgresql, namespace: ns, schedule: { cron: "${cron}" } }
    - { name: pg2, engine: postgresql, namespace: ns, verify: { schedule: { cron: "0 2 * * 8" } } }
`;

  test("GIVEN out-of-range cron fields WHEN the plan is loaded THEN each names the file, field and value", () => {
    assert.throws(
      () => mergePlans([], parsePlans(planText("61 25 * * *"), "plans/ml.yaml")),
      (error: unknown) => {
        assert.ok(error instanceof PlanError);
        assert.deepEqual(error.problems, [
          'plans/ml.yaml: /spec/targets/0/schedule/cron minute 61 is out of range 0-59 (got "61 25 * * *")',
          'plans/ml.yaml: /spec/targets/1/verify/schedule/cron day-of-week 8 is out of range 0-6 (got "0 2 * * 8")',
        ]);
        return true;
      },
    );
  });

  test("GIVEN a plan with an out-of-range cron WHEN `plan --dry-run` runs THEN it prints no CronJob and exits non-zero with the line", async () => {
    const dir = await mkdtemp(join(tmpdir(), "capsule-cron-"));
    await writeFile(join(dir, "ml.yaml"), planText("61 25 * * *"));
    const { code, stdout, stderr } = await capsule(["plan", "--dry-run", "--plans", dir]);
    assert.notEqual(code, 0);
    assert.equal(stdout, "");
    assert.match(stderr, /ml\.yaml: \/spec\/targets\/0\/schedule\/cron minute 61 is out of range 0-59/);
    assert.match(
      stderr,
      /ml\.yaml: \/spec\/targets\/1\/verify\/schedule\/cron day-of-week 8 is out of range 0-6/,
    );
  });
});
