/**
 * The WAL streaming flow (`capsule <engine> --stream-wal`, `capsule run --stream-wal`): the target's WAL archive
 * from the store, the engine's streamer under SIGINT/SIGTERM handling, and its outcome. A signal makes the streamer
 * store and confirm what it received; only when it could not does the run end as interrupted (130/143).
 */
import { CapsuleError, ErrorCode } from "../domain/errors.js";
import type { Engine, Fields, StreamLog, WalStreamOutcome } from "../engines/engine.js";
import type { BackupStore } from "../storage/backup-store.js";
import { interruptible } from "../util/interruption.js";

export interface StreamWalOptions {
  readonly cluster: string;
  readonly target: string;
  readonly fields: Fields;
  readonly log: StreamLog;
  /** The liveness heartbeat (engine.ts `WalStreamContext.alive`). */
  readonly alive?: (() => void) | undefined;
}

export async function streamWalToStore(
  store: BackupStore,
  engine: Engine,
  conn: unknown,
  options: StreamWalOptions,
): Promise<WalStreamOutcome> {
  if (!engine.streamWal) {
    throw new CapsuleError(ErrorCode.NotImplemented, `${engine.name} has no write-ahead log to stream`);
  }
  engine.checkStreamWal?.(options.fields, options.target);
  const archive = store.walArchive(options.cluster, options.target);
  return interruptible(
    (signal) =>
      engine.streamWal!(
        conn,
        {
          target: options.target,
          sink: archive,
          sinkDescription: archive.description,
          fields: options.fields,
        },
        { signal, log: options.log, alive: options.alive },
      ),
    {
      describe: (signal, cause) =>
        `stopped by ${signal} before the last WAL was stored (${(cause as Error).message ?? String(cause)}); ` +
        "the replication slot keeps it for the next run",
    },
  );
}
