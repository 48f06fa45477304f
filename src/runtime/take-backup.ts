/**
 * One backup run, engine-agnostic: begin (a `running` statefile before any data is read), heartbeat while the
 * engine streams, commit on success, record the failure otherwise. An interrupt (SIGINT/SIGTERM) marks the run
 * failed before the process exits, so nothing is left looking like it might still succeed. A run that cannot
 * write its heartbeat stops itself before readers would call it abandoned while it still runs (docs/adr/0013).
 */
import { CapsuleError, ErrorCode, messageOf } from "../domain/errors.js";
import type { Logger } from "../log.js";
import { InterruptedError } from "../util/interruption.js";
import type { BackupStore, BeginRun } from "../storage/backup-store.js";
import type { ArtifactSink } from "../domain/artifact.js";
import type { EngineBackupResult, EngineContext } from "../engines/engine.js";
import type { Statefile } from "../domain/statefile.js";
import { buildInfo } from "../version.js";

/** The engine's part of a run: stream the artifact into the run, say what it holds. */
export type EngineBackup = (sink: ArtifactSink, context: EngineContext) => Promise<EngineBackupResult>;

export interface TakeBackupOptions {
  /** How often the statefile's heartbeat is written. @default 30 000 ms */
  readonly heartbeatMs?: number;
}

const HEARTBEAT_MS = 30_000;

export async function takeBackup(
  store: BackupStore,
  init: Omit<BeginRun, "tool"> & { tool?: Record<string, string> },
  engine: EngineBackup,
  log?: Logger,
  options: TakeBackupOptions = {},
): Promise<Statefile> {
  const run = await store.begin({ ...init, tool: { capsule: buildInfo.version, ...init.tool } });
  log?.info("backup started", { backupId: run.ref.backupId, cluster: init.cluster, target: init.target });
  let phase = "starting";
  const heartbeatMs = options.heartbeatMs ?? HEARTBEAT_MS;
  let heartbeatError: unknown;
  run.startHeartbeat(heartbeatMs, (error) => {
    heartbeatError = error;
    log?.warn("heartbeat failed", { error: messageOf(error) });
  });

  const abort = new AbortController();
  // Half the abandoned age: the stop, and the attempt to record it, still finish while readers see `running`.
  const silenceLimitMs = store.abandonedAfterMs / 2;
  const watchdog = setInterval(() => {
    const silentMs = store.now().getTime() - run.lastHeartbeatAt.getTime();
    if (silentMs <= silenceLimitMs || abort.signal.aborted) return;
    const cause = heartbeatError instanceof Error ? heartbeatError : undefined;
    abort.abort(
      new CapsuleError(
        cause instanceof CapsuleError ? cause.code : ErrorCode.StoreUnreachable,
        `stopped while ${phase}: the statefile's heartbeat could not be written for ${Math.round(silentMs / 1000)} s ` +
          `(${cause ? messageOf(cause) : "writes still retrying"}); a run stops before it would be reported ` +
          `abandoned (${Math.round(store.abandonedAfterMs / 1000)} s)`,
        { cause },
      ),
    );
  }, heartbeatMs);
  watchdog.unref();
  const interrupted = new Promise<never>((_, reject) => {
    abort.signal.addEventListener("abort", () => reject(abort.signal.reason as Error), { once: true });
  });
  interrupted.catch(() => undefined);
  const onSignal = (signal: NodeJS.Signals) =>
    abort.abort(
      new InterruptedError(
        signal === "SIGINT" ? "SIGINT" : "SIGTERM",
        `interrupted by ${signal} while ${phase}`,
      ),
    );
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  try {
    const onPhase = (next: string) => {
      phase = next;
      run
        .heartbeat(next)
        .catch((error: unknown) => log?.warn("heartbeat failed", { error: messageOf(error) }));
    };
    const result = await Promise.race([engine(run, { onPhase, signal: abort.signal }), interrupted]);
    const statefile = await run.commit({
      ...result,
      fingerprint: result.fingerprint as Record<string, unknown>,
    });
    log?.info("backup succeeded", {
      backupId: run.ref.backupId,
      bytes: result.artifact.sizeBytes,
      sha256: result.artifact.sha256,
    });
    return statefile;
  } catch (error) {
    await run
      .fail(phase, error)
      .catch((failError: unknown) =>
        log?.error("could not record the failure in the statefile", { error: messageOf(failError) }),
      );
    log?.error("backup failed", {
      backupId: run.ref.backupId,
      phase,
      error: messageOf(error),
      ...(error instanceof CapsuleError && { code: error.code }),
    });
    throw error;
  } finally {
    clearInterval(watchdog);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
