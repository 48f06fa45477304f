/**
 * The one backup flow, for every engine and every caller (the CLI's `--create`, `capsule run` in a CronJob's pod):
 * the run protocol of take-backup.ts around the engine's own backup, with the source recorded without credentials.
 */
import { isSafeSegment, SAFE_SEGMENT_RULE } from "../domain/backup.js";
import { ErrorCode, FieldError } from "../domain/errors.js";
import type { Statefile } from "../domain/statefile.js";
import type { Engine, Fields } from "../engines/engine.js";
import type { Logger } from "../log.js";
import { redactSource } from "../redact.js";
import type { BackupStore } from "../storage/backup-store.js";
import { takeBackup } from "./take-backup.js";

export interface BackupRequest {
  readonly cluster: string;
  /** The target name the backup records. @default the engine's for the connection (`engine.defaultTarget`) */
  readonly target?: string;
  readonly trigger: Statefile["trigger"];
  /** The engine's own backup fields (Elasticsearch's `indices`). */
  readonly fields: Fields;
}

export async function backUp(
  store: BackupStore,
  engine: Engine,
  conn: unknown,
  request: BackupRequest,
  log?: Logger,
): Promise<Statefile> {
  engine.checkBackup?.(request.fields);
  const target = request.target ?? engine.defaultTarget(conn);
  if (!isSafeSegment(target)) {
    // Only a defaulted name reaches here (commands vet a given one): say where it came from and what to do.
    throw new FieldError(
      ErrorCode.Config,
      "target",
      `the backup needs a target name and ${JSON.stringify(target)} cannot be one (${SAFE_SEGMENT_RULE}): pass {target} NAME`,
    );
  }
  return takeBackup(
    store,
    {
      cluster: request.cluster,
      target,
      engine: engine.name,
      // Recorded from the start, so retention knows a running physical backup still needs its WAL.
      ...(request.fields["physical"] === true ? { kind: "physical" as const } : {}),
      trigger: request.trigger,
      source: redactSource(engine.source(conn)),
    },
    (sink, context) => engine.backup(conn, sink, request.fields, context),
    log,
  );
}
