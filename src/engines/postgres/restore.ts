/**
 * PostgreSQL restore, non-destructive by default (docs/design.md §8): restore into a scratch database, prove it (the
 * artifact's sha256 and the fingerprint's row counts), and only then swap names so the old database survives as
 * `<db>_pre_restore_<ts>`. A mismatch drops the scratch database and changes nothing.
 */
import { randomBytes } from "node:crypto";
import { pipeline, Transform } from "node:stream";
import { setTimeout } from "node:timers/promises";
import { CapsuleError, ErrorCode, FieldError } from "../../domain/errors.js";
import { failpoint } from "../../util/failpoint.js";
import { throwIfInterrupted } from "../../util/interruption.js";
import { interruptedWith, mismatchError } from "../restore-guards.js";
import type { ArtifactSource } from "../../domain/artifact.js";
import { spawnPipeline } from "../process-pipeline.js";
import { describeConnection, libpqEnv, type PgConnection } from "./connection.js";
import { compareRowCounts, tableRowCounts, type PgFingerprint } from "./fingerprint.js";
import { claimScratch, dropDatabase, findLeftoverDatabases, scratchComment } from "./leftovers.js";
import { ident, withClient } from "./sql.js";
import { CLIENT_PACKAGE, zstdDecompress } from "./tools.js";

export type PgRestoreMode =
  /** Restore beside, verify, then swap names; the old database is kept. */
  | { kind: "swap" }
  /** Restore into a new database that must not exist; the original is not touched. */
  | { kind: "new-database"; database: string }
  /** `pg_restore --clean --if-exists --single-transaction` over the existing database, for users without CREATEDB. */
  | { kind: "in-place" };

export interface PgRestoreOutcome {
  /** The database that now holds the backup's data. */
  readonly database: string;
  /** Where the previous data was kept (swap mode, when the database existed). */
  readonly keptAs?: string;
  readonly tables: number;
  readonly rows: number;
}

/** The maintenance databases a server always has, for statements that must not run inside the target. */
const MAINTENANCE_DATABASES = ["postgres", "template1"];
/** PostgreSQL truncates identifiers beyond 63 bytes; names we create must stay within it. */
const MAX_IDENTIFIER = 63;
/** Renames retried when a client slips in between ending sessions and renaming. */
const SWAP_ATTEMPTS = 5;
/** 100 ms apart: how long a killed pg_restore's backend gets to roll back before we stop waiting. */
const END_SESSION_POLLS = 600;

export interface PgRestoreOptions {
  onPhase?: (phase: string) => void;
  /** One line for the operator that is not a phase (leftovers found on the server). */
  onNotice?: (line: string) => void;
  noOwner?: boolean;
  now?: Date;
  /** SIGINT/SIGTERM: stop the tools, leave the target as it was, remove what this restore created. */
  signal?: AbortSignal;
}

/**
 * What an interruption or a failure leaves, by mode (README "restore guarantees"): in place, the whole restore is
 * one transaction that commits only after the last byte was checked, so the target holds its old data or the
 * backup's; swap and new-database restore into a database of their own, dropped on failure, and the swap renames
 * both databases in one transaction. A SIGKILL leaves at most a scratch database, which the next run names.
 */
export async function restorePostgres(
  conn: PgConnection,
  source: ArtifactSource,
  mode: PgRestoreMode,
  options: PgRestoreOptions = {},
): Promise<PgRestoreOutcome> {
  const phase = options.onPhase ?? (() => undefined);
  const signal = options.signal;
  const fingerprint = source.statefile.fingerprint as PgFingerprint | undefined;
  const stamp = (options.now ?? new Date()).toISOString().replace(/[-:T]/g, "").slice(0, 14);
  const target = conn.database;
  const maintenance = await findMaintenanceDatabase(conn);
  // A missing or wrong decryption key is known before any database is created or touched.
  await source.checkReadable();
  const leftovers = await findLeftoverDatabases(conn, maintenance).catch(() => []);
  if (leftovers.length > 0) {
    options.onNotice?.(
      `found ${leftovers.length} scratch database(s) left by an interrupted capsule on ${describeConnection(conn, maintenance)}: ` +
        `${leftovers.join(", ")} (capsule pg --check --yes with the same connection flags drops them)`,
    );
  }

  if (mode.kind === "in-place") {
    // Nothing may reach the live database before the whole artifact is known good.
    phase("verifying checksum");
    await source.verify();
    const state = `${target} is unchanged: the restore ran in one transaction, which was rolled back`;
    try {
      throwIfInterrupted(signal);
      phase("restoring in place (one transaction)");
      await streamRestore(conn, maintenance, source, target, {
        // One transaction: a restore that stops anywhere (a signal, a SIGKILL, a bad byte) is rolled back whole.
        extraArgs: ["--clean", "--if-exists", "--single-transaction"],
        noOwner: options.noOwner,
        signal,
      });
    } catch (error) {
      throw withState(error, signal, `while restoring ${target} in place`, state);
    }
    // After the commit: the data is the backup's whole, so a mismatch here is the backup's own inconsistency.
    return {
      database: target,
      ...(await checkFingerprint(conn, target, fingerprint, { allowExtraTables: true })),
    };
  }

  const scratch =
    mode.kind === "new-database" ? mode.database : derivedDatabaseName(target, `_capsule_restore_${stamp}`);
  if (await databaseExists(conn, maintenance, scratch)) {
    throw new FieldError(
      ErrorCode.Refused,
      "toDatabase",
      `database "${scratch}" already exists; choose another {toDatabase}`,
    );
  }
  // Held until the scratch database is swapped in or dropped, so no other run takes it for debris.
  const claim = await claimScratch(conn, maintenance, scratch);
  try {
    phase(`creating ${scratch}`);
    await withClient(conn, maintenance, async (c) => {
      await c.query(`CREATE DATABASE ${ident(scratch)} TEMPLATE template0`);
      await c.query(
        `COMMENT ON DATABASE ${ident(scratch)} IS ${c.escapeLiteral(scratchComment(`restore of ${source.backupId}`))}`,
      );
    });
    let counts: { tables: number; rows: number };
    let keptAs: string | undefined;
    try {
      throwIfInterrupted(signal);
      phase(`restoring into ${scratch}`);
      await streamRestore(conn, maintenance, source, scratch, { noOwner: options.noOwner, signal });
      throwIfInterrupted(signal);
      phase("comparing row counts");
      counts = await checkFingerprint(conn, scratch, fingerprint);
      if (mode.kind === "swap") {
        phase("swapping databases");
        const kept = derivedDatabaseName(target, `_pre_restore_${stamp}`);
        if (await swapIn(conn, maintenance, { target, scratch, keptAs: kept }, signal)) keptAs = kept;
      }
    } catch (error) {
      const dropped = await dropDatabase(conn, maintenance, scratch).then(
        () => true,
        () => false,
      );
      const left = `${scratch} could not be dropped (capsule pg --check --yes drops it)`;
      const state =
        mode.kind === "new-database"
          ? `${dropped ? `${scratch} was dropped` : left}; nothing else was touched`
          : `${target} is unchanged; ${dropped ? "the scratch database was dropped" : `the scratch database ${left}`}`;
      throw withState(error, signal, `while restoring into ${scratch}`, state);
    }
    return { database: mode.kind === "swap" ? target : scratch, ...(keptAs ? { keptAs } : {}), ...counts };
  } finally {
    await claim.release();
  }
}

/**
 * `target` → `keptAs` and `scratch` → `target` in one transaction (PostgreSQL allows ALTER DATABASE RENAME in a
 * transaction block): there is no instant, whatever kills capsule, at which no database carries the target's name.
 * Resolves with whether `target` existed (and so was kept).
 */
async function swapIn(
  conn: PgConnection,
  maintenance: string,
  names: { target: string; scratch: string; keptAs: string },
  signal: AbortSignal | undefined,
): Promise<boolean> {
  const { target, scratch, keptAs } = names;
  return withClient(conn, maintenance, async (c) => {
    for (let attempt = 1; ; attempt++) {
      const existed =
        ((await c.query("SELECT 1 FROM pg_database WHERE datname = $1", [target])).rowCount ?? 0) > 0;
      // Renaming needs both databases idle; the operator confirmed the restore, so their sessions end here.
      await c.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ANY($1) AND pid <> pg_backend_pid()",
        [[target, scratch]],
      );
      await c.query("BEGIN");
      try {
        if (existed) await c.query(`ALTER DATABASE ${ident(target)} RENAME TO ${ident(keptAs)}`);
        await failpoint("pg-swap-between-renames", signal);
        await c.query(`ALTER DATABASE ${ident(scratch)} RENAME TO ${ident(target)}`);
        throwIfInterrupted(signal);
        await c.query("COMMIT");
        return existed;
      } catch (error) {
        await c.query("ROLLBACK").catch(() => undefined);
        // 55006: a client connected between the terminate and the rename; end it and try again.
        if ((error as { code?: string }).code === "55006" && attempt < SWAP_ATTEMPTS) continue;
        throw error;
      }
    }
  });
}

/**
 * Streams the artifact, checked against its sha256, through zstd into pg_restore. pg_restore is given the last
 * byte only after zstd exited 0 and the checksum matched: whatever goes wrong upstream — a forged statefile whose
 * artifact zstd cannot decode, a download cut short, capsule killed — pg_restore never sees a whole archive, so a
 * `--single-transaction` restore never reaches its COMMIT.
 */
async function streamRestore(
  conn: PgConnection,
  maintenance: string,
  source: ArtifactSource,
  database: string,
  options: { extraArgs?: string[]; noOwner: boolean | undefined; signal: AbortSignal | undefined },
): Promise<void> {
  const { signal } = options;
  const input = await source.open();
  let inputError: Error | undefined;
  input.on("error", (error) => (inputError ??= error));
  const decode = spawnPipeline([zstdDecompress()], { input, ...(signal && { signal }) });
  const gate = holdLastByte();
  // An error upstream destroys the gate, and spawnPipeline kills the tool reading it.
  pipeline(decode.output, gate, () => undefined);
  // Named, so the session can be ended (and its transaction rolled back) before we say what state the target is in.
  const applicationName = `capsule-restore:${process.pid}:${randomBytes(4).toString("hex")}`;
  const restore = spawnPipeline(
    [
      {
        command: "pg_restore",
        args: [
          "--exit-on-error",
          "--no-password",
          `--dbname=${database}`,
          ...(options.noOwner ? ["--no-owner", "--no-acl"] : []),
          ...(options.extraArgs ?? []),
        ],
        env: { ...libpqEnv(conn, database), PGAPPNAME: applicationName },
        package: CLIENT_PACKAGE,
      },
    ],
    { input: gate, ...(signal && { signal }) },
  );
  const stopDownload = () => input.destroy();
  signal?.addEventListener("abort", stopDownload, { once: true });
  // pg_restore prints nothing on stdout; failures arrive through `done`.
  restore.output.on("error", () => undefined).resume();
  let first: unknown;
  const settle = (done: Promise<void>, other: { kill(): void }) =>
    done.catch((error: unknown) => {
      first ??= error;
      other.kill();
      throw error;
    });
  try {
    await Promise.all([settle(decode.done, restore), settle(restore.done, decode)]);
  } catch (error) {
    input.destroy();
    await endSessions(conn, maintenance, applicationName);
    // A checksum mismatch kills the tools mid-stream; report the cause, not the casualty.
    throw inputError ?? first ?? error;
  } finally {
    signal?.removeEventListener("abort", stopDownload);
  }
  if (inputError) throw inputError;
}

/** Passes bytes through but keeps the last one until its source ended cleanly (see streamRestore). */
function holdLastByte(): Transform {
  let held: Buffer | undefined;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (chunk.length === 0) return callback();
      if (held) this.push(held);
      if (chunk.length > 1) this.push(chunk.subarray(0, -1));
      held = chunk.subarray(-1);
      callback();
    },
    flush(callback) {
      callback(null, held);
    },
  });
}

/**
 * Ends a killed tool's session and waits until the server has let it go: a backend notices a vanished client only
 * when it next reads from it, and until it has, its transaction (and its locks) may still be there.
 */
async function endSessions(conn: PgConnection, maintenance: string, applicationName: string): Promise<void> {
  await withClient(conn, maintenance, async (c) => {
    for (let i = 0; i < END_SESSION_POLLS; i++) {
      const r = await c.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        [applicationName],
      );
      if ((r.rowCount ?? 0) === 0) return;
      await setTimeout(100);
    }
  }).catch(() => undefined);
}

/** The error, with the state the target was left in; an InterruptedError if a signal was behind it. */
function withState(error: unknown, signal: AbortSignal | undefined, during: string, state: string): unknown {
  const interruption = interruptedWith(signal, ` ${during}: ${state}`, error);
  if (interruption) return interruption;
  if (error instanceof CapsuleError)
    return new CapsuleError(error.code, `${error.message}; ${state}`, { cause: error });
  return error;
}

async function checkFingerprint(
  conn: PgConnection,
  database: string,
  fingerprint: PgFingerprint | undefined,
  options: { allowExtraTables?: boolean } = {},
): Promise<{ tables: number; rows: number }> {
  const actual = await withClient(conn, database, tableRowCounts);
  const rows = Object.values(actual).reduce((a, b) => a + b, 0);
  if (!fingerprint?.tables) return { tables: Object.keys(actual).length, rows };
  const differences = compareRowCounts(fingerprint.tables, actual, options);
  if (differences.length > 0) throw mismatchError(describeConnection(conn, database), differences);
  return { tables: Object.keys(actual).length, rows };
}

/** `postgres`, else `template1`: where statements about other databases run. */
export async function findMaintenanceDatabase(conn: PgConnection): Promise<string> {
  let lastError: unknown;
  for (const db of MAINTENANCE_DATABASES) {
    try {
      await withClient(conn, db, (c) => c.query("SELECT 1"));
      return db;
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

async function databaseExists(conn: PgConnection, maintenance: string, name: string): Promise<boolean> {
  const result = await withClient(conn, maintenance, (c) =>
    c.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]),
  );
  return (result.rowCount ?? 0) > 0;
}

/** `<db><suffix>`, shortening `<db>` (never the suffix that makes the name unique) to fit 63 bytes. */
export function derivedDatabaseName(database: string, suffix: string): string {
  let head = database;
  while (head && Buffer.byteLength(head + suffix) > MAX_IDENTIFIER) head = head.slice(0, -1);
  return head + suffix;
}
