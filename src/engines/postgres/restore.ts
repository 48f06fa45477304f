/**
 * PostgreSQL restore, non-destructive by default (DESIGN §8): restore into a scratch database, prove it (the
 * artifact's sha256 and the fingerprint's row counts), and only then swap names so the old database survives as
 * `<db>_pre_restore_<ts>`. A mismatch drops the scratch database and changes nothing.
 */
import { CapsuleError, ErrorCode } from "../../errors.js";
import type { BackupEntry, BackupStore } from "../../storage/backup-store.js";
import { spawnPipeline } from "../process-pipeline.js";
import { describeConnection, libpqEnv, type PgConnection } from "./connection.js";
import { compareRowCounts, tableRowCounts, type PgFingerprint } from "./fingerprint.js";
import { ident, withClient } from "./sql.js";
import { CLIENT_PACKAGE, zstdDecompress } from "./tools.js";

export type PgRestoreMode =
  /** Restore beside, verify, then swap names; the old database is kept. */
  | { kind: "swap" }
  /** Restore into a new database that must not exist; the original is not touched. */
  | { kind: "new-database"; database: string }
  /** `pg_restore --clean --if-exists` over the existing database, for users without CREATEDB. */
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

export async function restorePostgres(
  conn: PgConnection,
  store: BackupStore,
  entry: BackupEntry,
  mode: PgRestoreMode,
  options: { onPhase?: (phase: string) => void; noOwner?: boolean; now?: Date } = {},
): Promise<PgRestoreOutcome> {
  const phase = options.onPhase ?? (() => undefined);
  const fingerprint = entry.statefile?.fingerprint as PgFingerprint | undefined;
  const stamp = (options.now ?? new Date()).toISOString().replace(/[-:T]/g, "").slice(0, 14);
  const target = conn.database;
  const maintenance = await findMaintenanceDatabase(conn);
  const admin = <T>(work: (c: import("pg").Client) => Promise<T>) => withClient(conn, maintenance, work);
  // A missing or wrong decryption key is known before any database is created or touched.
  await store.identitiesFor(entry);

  if (mode.kind === "in-place") {
    // Nothing may reach the live database before the whole artifact is known good.
    phase("verifying checksum");
    await store.verifyArtifact(entry);
    phase("restoring in place");
    await streamRestore(conn, store, entry, target, ["--clean", "--if-exists"], options.noOwner);
    return {
      database: target,
      ...(await checkFingerprint(conn, target, fingerprint, { allowExtraTables: true })),
    };
  }

  const scratch =
    mode.kind === "new-database" ? mode.database : derivedDatabaseName(target, `_capsule_restore_${stamp}`);
  if (await databaseExists(conn, maintenance, scratch)) {
    throw new CapsuleError(
      ErrorCode.Refused,
      `database "${scratch}" already exists; choose another --to-database`,
    );
  }
  phase(`creating ${scratch}`);
  await admin((c) => c.query(`CREATE DATABASE ${ident(scratch)} TEMPLATE template0`));
  let counts: { tables: number; rows: number };
  try {
    phase(`restoring into ${scratch}`);
    await streamRestore(conn, store, entry, scratch, [], options.noOwner);
    phase("comparing row counts");
    counts = await checkFingerprint(conn, scratch, fingerprint);
  } catch (error) {
    await admin((c) => c.query(`DROP DATABASE IF EXISTS ${ident(scratch)} WITH (FORCE)`)).catch(
      () => undefined,
    );
    throw error;
  }
  if (mode.kind === "new-database") return { database: scratch, ...counts };

  phase("swapping databases");
  const keptAs = derivedDatabaseName(target, `_pre_restore_${stamp}`);
  const existed = await databaseExists(conn, maintenance, target);
  await admin(async (c) => {
    if (existed) {
      // Renaming needs the database idle; the operator confirmed the restore, so its sessions end here.
      await c.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        [target],
      );
      await c.query(`ALTER DATABASE ${ident(target)} RENAME TO ${ident(keptAs)}`);
    }
    try {
      await c.query(`ALTER DATABASE ${ident(scratch)} RENAME TO ${ident(target)}`);
    } catch (error) {
      if (existed) await c.query(`ALTER DATABASE ${ident(keptAs)} RENAME TO ${ident(target)}`);
      throw error;
    }
  });
  return { database: target, ...(existed ? { keptAs } : {}), ...counts };
}

/** Streams the artifact, checked against its sha256, through zstd into pg_restore. */
async function streamRestore(
  conn: PgConnection,
  store: BackupStore,
  entry: BackupEntry,
  database: string,
  extraArgs: string[],
  noOwner: boolean | undefined,
): Promise<void> {
  const input = await store.openArtifact(entry);
  let inputError: Error | undefined;
  input.on("error", (error) => (inputError = error));
  const restore = spawnPipeline(
    [
      zstdDecompress(),
      {
        command: "pg_restore",
        args: [
          "--exit-on-error",
          "--no-password",
          `--dbname=${database}`,
          ...(noOwner ? ["--no-owner", "--no-acl"] : []),
          ...extraArgs,
        ],
        env: libpqEnv(conn, database),
        package: CLIENT_PACKAGE,
      },
    ],
    { input },
  );
  try {
    // pg_restore prints nothing on stdout; failures arrive through `done`.
    restore.output.on("error", () => undefined).resume();
    await restore.done;
  } catch (error) {
    // A checksum mismatch kills the tools mid-stream; report the cause, not the casualty.
    throw inputError ?? error;
  }
  if (inputError) throw inputError;
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
  if (differences.length > 0) {
    throw new CapsuleError(
      ErrorCode.FingerprintMismatch,
      `${describeConnection(conn, database)}: restored data does not match the backup: ${differences.slice(0, 5).join("; ")}` +
        (differences.length > 5 ? ` (+${differences.length - 5} more)` : ""),
    );
  }
  return { tables: Object.keys(actual).length, rows };
}

async function findMaintenanceDatabase(conn: PgConnection): Promise<string> {
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
