/**
 * Where a point-in-time restore stops (docs/adr/0021), from the fields `--target-time`/`--target-lsn` fill: the end
 * of the WAL in the bucket, or just before a time or an LSN. Pure.
 */
import { ErrorCode, FieldError } from "./errors.js";
import { isLsn } from "./wal.js";

export type RecoveryTarget =
  | { readonly kind: "latest" }
  | { readonly kind: "time"; readonly time: string }
  | { readonly kind: "lsn"; readonly lsn: string };

/** A time with its zone: a time without one would be read in whatever zone the recovering server has. */
const TIME_WITH_ZONE = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)$/i;

/** The recovery target `targetTime`/`targetLsn` ask for; throws naming the field when they contradict or do not parse. */
export function recoveryTargetOf(fields: Readonly<Record<string, unknown>>): RecoveryTarget {
  const time = fields["targetTime"] as string | undefined;
  const lsn = fields["targetLsn"] as string | undefined;
  if (time !== undefined && lsn !== undefined) {
    throw new FieldError(ErrorCode.Config, "targetTime", "choose one of {targetTime} and {targetLsn}");
  }
  if (time !== undefined) {
    if (!TIME_WITH_ZONE.test(time.trim()) || Number.isNaN(Date.parse(time.trim()))) {
      throw new FieldError(
        ErrorCode.Config,
        "targetTime",
        `{targetTime} ${JSON.stringify(time)} is not a time with its zone (like 2026-12-05T13:20:00Z)`,
      );
    }
    return { kind: "time", time: time.trim() };
  }
  if (lsn !== undefined) {
    if (!isLsn(lsn)) {
      throw new FieldError(
        ErrorCode.Config,
        "targetLsn",
        `{targetLsn} ${JSON.stringify(lsn)} is not an LSN (like 0/16B3748)`,
      );
    }
    return { kind: "lsn", lsn: lsn.trim().toUpperCase() };
  }
  return { kind: "latest" };
}
