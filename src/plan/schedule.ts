/**
 * Schedules: a CnvrgApp `period` (`<n><s|m|h|d>`) becomes a cron expression with a per-target offset, so hundreds of
 * targets with the same period do not all fire at minute 0. The offset comes from a hash of `<cluster>/<target>`, so
 * it is stable across runs, replicas and releases (a changed offset would rewrite every CronJob).
 *
 * Cron only expresses periods that divide the next unit evenly, so a period is mapped to the largest expressible
 * period that is not longer than asked — a backup never runs less often than its period promises:
 *
 *   < 1 min            → every minute                    (sub-minute periods cannot be expressed)
 *   1–59 min           → every d min, d the largest divisor of 60 ≤ period   `o-59/d * * * *`  (45m → 30m)
 *   1–23 h             → every d h, d the largest divisor of 24 ≤ period     `m o-23/d * * *`  (5h → 4h)
 *   1–6 d              → daily at a spread hour and minute                   `m h * * *`       (3d → 1d)
 *   7–30 d             → weekly on a spread weekday                          `m h * * w`       (14d → 7d)
 *   ≥ 31 d             → monthly on a spread day 1–28                        `m h d * *`
 *
 * Periods in between units round down to the unit (90m → 1h, 36h → 1d).
 */
import { createHash } from "node:crypto";
import type { CronExpressionParser } from "cron-parser";
import { loadOnUse } from "../util/load-on-use.js";

const PERIOD = /^([1-9][0-9]{0,5})(s|m|h|d)$/;
const UNIT_SECONDS = { s: 1, m: 60, h: 3_600, d: 86_400 } as const;

/** Seconds in a valid period, or a reason it is not one. */
export function parsePeriod(period: string): number | { reason: string } {
  const match = PERIOD.exec(period);
  if (!match) return { reason: "must be <number><s|m|h|d>, e.g. 24h, with a number from 1 to 999999" };
  return Number(match[1]) * UNIT_SECONDS[match[2] as keyof typeof UNIT_SECONDS];
}

/** Four stable pseudo-random numbers for a target: minute, hour, weekday and day-of-month offsets. */
function spread(seed: string): [number, number, number, number] {
  const digest = createHash("sha256").update(seed).digest();
  return [digest.readUInt32BE(0), digest.readUInt32BE(4), digest.readUInt32BE(8), digest.readUInt32BE(12)];
}

function largestDivisorAtMost(whole: number, atMost: number): number {
  for (let d = Math.min(whole, atMost); d > 1; d--) if (whole % d === 0) return d;
  return 1;
}

/** The cron for a period in seconds, spread by `seed` (use `<cluster>/<target>`). */
export function periodToCron(seconds: number, seed: string): string {
  const [a, b, c, d] = spread(seed);
  const minutes = Math.max(1, Math.floor(seconds / 60));
  const minute = a % 60;
  const hour = b % 24;
  if (minutes < 60) {
    const step = largestDivisorAtMost(60, minutes);
    return step === 1 ? "* * * * *" : `${a % step}-59/${step} * * * *`;
  }
  const hours = Math.floor(minutes / 60);
  if (hours < 24) {
    const step = largestDivisorAtMost(24, hours);
    return step === 1 ? `${minute} * * * *` : `${minute} ${b % step}-23/${step} * * *`;
  }
  const days = Math.floor(hours / 24);
  if (days < 7) return `${minute} ${hour} * * *`;
  if (days < 31) return `${minute} ${hour} * * ${c % 7}`;
  return `${minute} ${hour} ${1 + (d % 28)} * *`;
}

/** The macros Kubernetes documents for `spec.schedule`. */
const MACROS = new Set(["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"]);

/**
 * The five fields as Kubernetes parses them (robfig/cron's standard parser): its bounds, not cron-parser's, since
 * Kubernetes has no 7 for Sunday; names only in month and day-of-week.
 */
const FIELDS = [
  { name: "minute", min: 0, max: 59, names: false },
  { name: "hour", min: 0, max: 23, names: false },
  { name: "day-of-month", min: 1, max: 31, names: false },
  { name: "month", min: 1, max: 12, names: true },
  { name: "day-of-week", min: 0, max: 6, names: true },
] as const;

/** One comma-separated part of a field: `*`, `?`, a value or a range, with an optional step. No L, W, # or H. */
const PART = /^(?:[*?]|([0-9]+|[A-Za-z]{3})(?:-([0-9]+|[A-Za-z]{3}))?)(?:\/([0-9]+))?$/;

/** Loaded on first use: only commands that check a schedule need it (25 ms of start-up otherwise). */
const cronParser = loadOnUse<{ CronExpressionParser: typeof CronExpressionParser }>("cron-parser");

/** The parser's reason an expression is refused, or undefined. */
function parserProblem(expression: string): string | undefined {
  try {
    cronParser().CronExpressionParser.parse(expression);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/**
 * Why a cron expression would be refused by Kubernetes or never fire, or undefined. cron-parser decides; the checks
 * before it name the field and narrow cron-parser to what Kubernetes accepts. A time zone prefix is refused because
 * Kubernetes refuses it in `spec.schedule` and capsule fixes the CronJob's `timeZone` to Etc/UTC.
 */
export function cronProblem(cron: string): string | undefined {
  const trimmed = cron.trim();
  if (/^(CRON_)?TZ=/.test(trimmed)) return "must not set a time zone: capsule CronJobs always run in Etc/UTC";
  if (trimmed.startsWith("@")) {
    return MACROS.has(trimmed) ? undefined : `macro ${trimmed} is not one of ${[...MACROS].join(", ")}`;
  }
  const fields = trimmed.split(/\s+/);
  if (fields.length !== FIELDS.length)
    return `must have 5 fields (minute hour day-of-month month day-of-week) or be a macro`;
  for (const [i, field] of FIELDS.entries()) {
    for (const part of fields[i]!.split(",")) {
      const match = PART.exec(part);
      const [, start, end] = match ?? [];
      if (!match || (!field.names && /[A-Za-z]/.test(part))) {
        return `${field.name} ${part} is not a number, range, list, step, * or ?`;
      }
      for (const value of [start, end]) {
        if (value !== undefined && /^[0-9]+$/.test(value) && (+value < field.min || +value > field.max))
          return `${field.name} ${value} is out of range ${field.min}-${field.max}`;
      }
      // The part alone, every other field `*`: cron-parser's reason is then about this part only.
      const alone = FIELDS.map((_, j) => (j === i ? part : "*")).join(" ");
      const reason = parserProblem(alone);
      if (reason !== undefined) return `${field.name} ${part} is invalid: ${reason}`;
    }
  }
  const reason = parserProblem(trimmed);
  return reason === undefined ? undefined : `never fires: ${reason}`;
}
