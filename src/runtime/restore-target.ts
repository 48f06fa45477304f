/**
 * `capsule run --restore ID`: a restore of a compiled target inside its own pod — what `--in-cluster` and signed
 * bucket restore requests run, so the database credentials stay in the cluster. The engines' restores are the same
 * ones the admin CLI runs (checksum first, counts compared, non-destructive by default); the outcome, success or
 * failure, is appended to the backup's statefile with the request that asked for it.
 */
import { describeConnection as describePg } from "../engines/postgres/connection.js";
import { restorePostgres, type PgRestoreMode } from "../engines/postgres/restore.js";
import { describeConnection as describeRedis } from "../engines/redis/connection.js";
import { restoreRedis } from "../engines/redis/restore.js";
import { describeConnection as describeEs } from "../engines/elasticsearch/connection.js";
import { restoreElasticsearch } from "../engines/elasticsearch/restore.js";
import { CapsuleError, ErrorCode } from "../domain/errors.js";
import type { RunTarget } from "../plan/run-contract.js";
import type { BackupEntry, BackupStore } from "../storage/backup-store.js";
import { recordedRestore, type RestoreTrigger } from "./record-restore.js";
import { esConnectionOf, pgConnectionOf, redisConnectionOf } from "./target-connection.js";

/** How to restore; each option belongs to one engine, and using it with another is a usage error upstream. */
export interface TargetRestoreOptions {
  /** PostgreSQL: restore into this new database instead of swapping. */
  readonly toDatabase?: string;
  /** PostgreSQL: pg_restore --clean over the live database (the whole artifact is verified first). */
  readonly inPlace?: boolean;
  /** Elasticsearch: delete and recreate indices that exist. */
  readonly replace?: boolean;
  /** Elasticsearch: which of the backup's indices. */
  readonly indices?: string;
  readonly trigger?: RestoreTrigger;
  readonly onPhase?: (phase: string) => void;
}

/** Restores `entry` into the target's own database; resolves with one line saying what now holds the data. */
export async function restoreTarget(
  target: RunTarget,
  env: NodeJS.ProcessEnv,
  store: BackupStore,
  entry: BackupEntry,
  options: TargetRestoreOptions,
): Promise<string> {
  if (entry.state !== "succeeded") {
    throw new CapsuleError(
      ErrorCode.NotRestorable,
      `${entry.ref.backupId} is ${entry.state}: only succeeded backups are restored`,
    );
  }
  if (entry.statefile?.target !== target.target) {
    throw new CapsuleError(
      ErrorCode.NotRestorable,
      `${entry.ref.backupId} is a backup of target ${entry.statefile?.target ?? "?"}, not ${target.target}`,
    );
  }
  const { to, work } = plan(target, env, store, entry, options);
  // SIGTERM (a deleted Job, a drained node) aborts the restore's signal so the engine leaves the target whole.
  return recordedRestore(store, entry, { to, ...(options.trigger && { trigger: options.trigger }) }, work);
}

function plan(
  target: RunTarget,
  env: NodeJS.ProcessEnv,
  store: BackupStore,
  entry: BackupEntry,
  options: TargetRestoreOptions,
): { to: string; work: (signal: AbortSignal) => Promise<string> } {
  const onPhase = options.onPhase ?? (() => undefined);
  switch (target.engine) {
    case "postgresql": {
      const conn = pgConnectionOf(target, env);
      const mode: PgRestoreMode = options.inPlace
        ? { kind: "in-place" }
        : options.toDatabase
          ? { kind: "new-database", database: options.toDatabase }
          : { kind: "swap" };
      return {
        to: describePg(conn, options.toDatabase ?? conn.database),
        work: async (signal) => {
          const o = await restorePostgres(conn, store.artifactSource(entry), mode, {
            onPhase,
            onNotice: onPhase,
            signal,
          });
          return (
            `restored ${entry.ref.backupId} into ${o.database}: ${o.tables} tables, ${o.rows} rows match the backup` +
            (o.keptAs ? `; the previous database is kept as "${o.keptAs}"` : "")
          );
        },
      };
    }
    case "redis": {
      const conn = redisConnectionOf(target, env);
      return {
        to: describeRedis(conn),
        work: async (signal) => {
          const o = await restoreRedis(conn, store.artifactSource(entry), { onPhase, signal });
          return `restored ${entry.ref.backupId} into ${describeRedis(conn)}: ${o.keys} keys${o.checked ? ", key counts match the backup" : ""}`;
        },
      };
    }
    case "elasticsearch": {
      const conn = esConnectionOf(target, env);
      return {
        to: describeEs(conn),
        work: async (signal) => {
          const o = await restoreElasticsearch(conn, store.artifactSource(entry), {
            signal,
            ...(options.indices !== undefined && { indices: options.indices }),
            replace: options.replace ?? false,
            onPhase,
          });
          return `restored ${entry.ref.backupId} into ${describeEs(conn)}: ${o.indices.length} indices, ${o.docs} documents; counts match the backup`;
        },
      };
    }
  }
}
