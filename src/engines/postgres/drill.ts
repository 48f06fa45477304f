/**
 * The PostgreSQL restore drill: restore a backup somewhere it cannot harm production and prove it — the checksum
 * while it streams, then every table's row count against the fingerprint — then remove the scratch target, always.
 * Where: a throwaway cluster (initdb in a temp dir, when the server binaries are present), or a scratch database on
 * a named verification server.
 */
import { rm } from "node:fs/promises";
import path from "node:path";
import { type InterruptedError, throwIfInterrupted } from "../../util/interruption.js";
import { interruptedWith } from "../restore-guards.js";
import { runToEnd } from "../process-pipeline.js";
import { CapsuleError, ErrorCode } from "../../domain/errors.js";
import type { ArtifactSource } from "../../domain/artifact.js";
import {
  findScratchLeftovers,
  freePort,
  newestPostgresBinDir,
  removeScratchLeftover,
  scratchDir,
  serviceAccount,
  startScratchServer,
} from "../scratch-server.js";
import { describeConnection, type PgConnection } from "./connection.js";
import { restorePostgres } from "./restore.js";
import { dropDatabase } from "./leftovers.js";
import { withClient } from "./sql.js";

const SCRATCH_USER = "capsule";
/** Throwaway clusters live in `$TMPDIR/capsule-verify-pg-*`. */
export const SCRATCH_LABEL = "verify-pg";

export async function drillPostgres(
  source: ArtifactSource,
  options: {
    server?: PgConnection;
    onPhase?: (phase: string) => void;
    now?: Date;
    /** SIGINT/SIGTERM: stop the restore, drop the scratch database or stop the throwaway server, then throw. */
    signal?: AbortSignal;
  } = {},
): Promise<{ method: string; details: string }> {
  const phase = options.onPhase ?? (() => undefined);
  const signal = options.signal;
  const stamp = (options.now ?? new Date()).toISOString().replace(/[-:T]/g, "").slice(0, 14);
  const scratch = `capsule_verify_${stamp}`;
  if (options.server) {
    const server = options.server;
    phase(`restoring into ${scratch} on ${describeConnection(server, scratch)}`);
    try {
      const outcome = await restorePostgres(
        server,
        source,
        { kind: "new-database", database: scratch },
        { ...(signal && { signal }) },
      );
      return {
        method: `restore into a scratch database on ${describeConnection(server, scratch)}`,
        details: `${outcome.tables} tables, ${outcome.rows} rows match the fingerprint`,
      };
    } finally {
      await dropDatabase(server, "postgres", scratch).catch(() => undefined);
    }
  }

  const bin = newestPostgresBinDir();
  if (!bin) {
    throw new CapsuleError(
      ErrorCode.ToolMissing,
      "no PostgreSQL server binaries for a throwaway cluster (install postgresql) — or name a verification server with --host",
    );
  }
  // Throwaway clusters a killed capsule left (their guard died with it but could not run): provably capsule's, never
  // anyone's data, and their owner is gone — so they go.
  for (const leftover of await findScratchLeftovers(SCRATCH_LABEL)) {
    phase(
      `removing ${leftover.dir}, left by an interrupted drill${leftover.serverPid ? ` (stopping its postgres, pid ${leftover.serverPid})` : ""}`,
    );
    await removeScratchLeftover(leftover);
  }
  throwIfInterrupted(signal);
  phase("starting a throwaway PostgreSQL");
  const owner = serviceAccount("postgres");
  const dir = await scratchDir(SCRATCH_LABEL, owner);
  const data = path.join(dir, "data");
  const initdb = {
    command: path.join(bin, "initdb"),
    args: ["-D", data, "-U", SCRATCH_USER, "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"],
    package: "postgresql",
    ...(owner ? { owner } : {}),
  };
  try {
    await runToEnd([initdb], { ...(signal && { signal }) });
    throwIfInterrupted(signal);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw interrupted(signal, error) ?? error;
  }
  const port = await freePort();
  const conn: PgConnection = { host: "127.0.0.1", port, user: SCRATCH_USER, database: scratch };
  const server = await startScratchServer({
    command: path.join(bin, "postgres"),
    args: [
      "-D",
      data,
      "-p",
      String(port),
      "-k",
      dir,
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "fsync=off",
      "-c",
      "full_page_writes=off",
    ],
    dir,
    port,
    owner,
    package: "postgresql",
    stopSignal: "INT",
    ...(signal && { signal }),
    ready: () => withClient(conn, "postgres", (c) => c.query("SELECT 1")).then(() => true),
  }).catch((error: unknown) => {
    throw interrupted(signal, error) ?? error;
  });
  try {
    phase(`restoring into a throwaway PostgreSQL ${path.basename(path.dirname(bin))}`);
    const outcome = await restorePostgres(
      conn,
      source,
      { kind: "new-database", database: scratch },
      { noOwner: true, ...(signal && { signal }) },
    );
    return {
      method: `restore into a throwaway PostgreSQL ${path.basename(path.dirname(bin))}`,
      details: `${outcome.tables} tables, ${outcome.rows} rows match the fingerprint`,
    };
  } catch (error) {
    throw interrupted(signal, error) ?? error;
  } finally {
    await server.stop();
  }
}

/** The drill's one line for an interruption: what it stopped and that nothing else was touched. */
function interrupted(signal: AbortSignal | undefined, cause: unknown): InterruptedError | undefined {
  const state =
    " during the restore drill: the throwaway PostgreSQL was stopped and its directory removed; nothing else was " +
    "touched; the backup's verification is unchanged";
  return interruptedWith(signal, state, cause);
}
