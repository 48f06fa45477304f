/**
 * `--stream-wal` behind the engine seam: the stream fields (`slot`, `walUploadInterval`) read and checked, the
 * streamer run, its outcome worded.
 */
import { configError } from "../connection-fields.js";
import type { Fields, WalStreamContext, WalStreamOutcome, WalStreamRequest } from "../engine.js";
import type { PgConnection } from "./connection.js";
import { defaultSlotName, isSlotName, SLOT_NAME_RULE } from "./replication-messages.js";
import { streamWal } from "./wal-streamer.js";

/** @default 10 s: a commit is in the bucket within about this long under any load. */
export const DEFAULT_WAL_UPLOAD_INTERVAL_MS = 10_000;

const INTERVAL = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m)?$/;
const UNIT_MS = { ms: 1, s: 1_000, m: 60_000 } as const;

export interface WalStreamSettings {
  readonly slot: string;
  readonly uploadIntervalMs: number;
}

/** The slot and interval the fields ask for, or the defaults; a bad value is a `FieldError` naming its field. */
export function walStreamSettings(fields: Fields, target: string): WalStreamSettings {
  const slot = (fields["slot"] as string | undefined) ?? defaultSlotName(target);
  if (!isSlotName(slot)) {
    throw configError("slot", `{slot} ${JSON.stringify(slot)}: a slot name is ${SLOT_NAME_RULE}`);
  }
  const interval = fields["walUploadInterval"] as string | undefined;
  if (interval === undefined) return { slot, uploadIntervalMs: DEFAULT_WAL_UPLOAD_INTERVAL_MS };
  const m = INTERVAL.exec(interval.trim());
  const ms = m ? Number(m[1]) * UNIT_MS[(m[2] ?? "s") as keyof typeof UNIT_MS] : NaN;
  if (!(ms >= 100 && ms <= 3_600_000)) {
    throw configError(
      "walUploadInterval",
      `{walUploadInterval} must be a duration from 100ms to 60m, like 10s or 500ms (got ${JSON.stringify(interval)})`,
    );
  }
  return { slot, uploadIntervalMs: ms };
}

export async function streamPostgresWal(
  conn: PgConnection,
  request: WalStreamRequest,
  context: WalStreamContext,
): Promise<WalStreamOutcome> {
  const settings = walStreamSettings(request.fields, request.target);
  const summary = await streamWal(conn, request.sink, {
    ...settings,
    signal: context.signal,
    report: context.log,
    alive: context.alive,
    sinkDescription: request.sinkDescription,
  });
  return {
    line:
      `stopped streaming: ${request.sinkDescription} holds WAL up to ${summary.archivedLsn} on timeline ` +
      `${summary.timeline}, confirmed to slot "${settings.slot}"`,
    document: { slot: settings.slot, ...summary },
  };
}
