/** PostgreSQL behind the engine seam (engines/engine.ts): logical dumps with pg_dump, restores with pg_restore. */
import type { Statefile } from "../../domain/statefile.js";
import { configError, targetFields, unverifiedTlsWarning } from "../connection-fields.js";
import { caFileFlag, serverFlags } from "../connection-flags.js";
import { flagsFor, type Engine, type Fields, type Leftover } from "../engine.js";
import { postgresProfile } from "./profile.js";
import { findScratchLeftovers, removeScratchLeftover } from "../scratch-server.js";
import { backupPostgres } from "./backup.js";
import { describeConnection, PG_SERVER, pgConnectionFrom, type PgConnection } from "./connection.js";
import { drillPostgres, SCRATCH_LABEL } from "./drill.js";
import { dropDatabase, findLeftoverDatabases } from "./leftovers.js";
import { findMaintenanceDatabase, restorePostgres, type PgRestoreMode } from "./restore.js";
import { streamPostgresWal, walStreamSettings } from "./stream-wal.js";
import { zstdDecompress } from "./tools.js";
import { backupPhysical } from "./physical-backup.js";
import {
  drillPointInTime,
  PITR_SCRATCH_LABEL,
  checkPointInTimeFields,
  restorePointInTime,
} from "./physical-engine.js";

const CONNECTION = ["create", "restore", "check", "verify --verify-server", "stream-wal"];

export const postgres: Engine<PgConnection> = {
  name: postgresProfile.name,
  command: postgresProfile.command,
  usage: {
    description: "Back up, list and restore PostgreSQL backups",
    targetDefault: "the database",
    details: `
      Connection flags fall back to the libpq variables PGHOST, PGPORT, PGDATABASE and PGUSER; the password is
      read only from PGPASSWORD. A restore is non-destructive by default: the backup is restored into a new
      database, checked against its checksum and row counts, and only then swapped in; the old database is kept
      as <db>_pre_restore_<timestamp>.

      Which database a restore replaces: --database, else the one the backup was taken from; if PGDATABASE names
      another, the restore is refused. --to-database names a new database to restore into instead.

      Interrupted (SIGINT, SIGTERM, SIGKILL) or failed, a restore leaves the target with exactly its old data or
      exactly the backup's. Swap: both renames are one transaction; until it commits the target is unchanged and
      the scratch database is dropped. --in-place: one transaction that commits only after the last byte passed
      zstd and the sha256 check. --to-database: the new database is dropped. SIGINT/SIGTERM exit 130/143 with one
      line saying what state the target is in; the restore is recorded as interrupted. After a SIGKILL, --check
      names the throwaway clusters a drill left on this machine and, given the connection flags (--host, --port,
      --database and --user), the scratch databases left on that server; --yes removes them. A live run's are
      never touched. Without connection flags --check contacts no database server.

      --stream-wal streams the server's write-ahead log into the bucket under --target until SIGTERM or SIGINT,
      through a physical replication slot (--slot, created if missing) that keeps WAL while capsule is down. The
      role needs REPLICATION, the server wal_level replica, a free max_wal_senders and a pg_hba.conf replication
      line for the user and host.
    `,
    examples: [
      [
        "Back up a database",
        "PGPASSWORD=… capsule pg --create --host db --database app --bucket s3://backups/capsule",
      ],
      ["List backups", "capsule pg --list --bucket s3://backups/capsule"],
      [
        "Restore, keeping the old data",
        "capsule pg --restore --id ID --host db --database app --bucket s3://backups/capsule",
      ],
      [
        "Stream the write-ahead log into the bucket until stopped (point-in-time recovery)",
        "PGUSER=capsule PGPASSWORD=… capsule pg --stream-wal --host db --target app --bucket s3://backups/capsule",
      ],
      [
        "Download a file for pg_restore",
        "capsule pg --download --id ID --to app.dump --bucket s3://backups/capsule",
      ],
    ],
  },
  flags: [
    ...flagsFor(CONNECTION, [
      ...serverFlags(PG_SERVER),
      {
        field: "database",
        kind: "string",
        description: "Database (default: $PGDATABASE, else the user name)",
      },
      {
        field: "user",
        kind: "string",
        description: "User (default: $PGUSER, else postgres)",
      },
      {
        field: "sslmode",
        kind: "string",
        description:
          "TLS: disable, verify-full, verify-ca, or require (unverified; needs --insecure-skip-tls-verify). " +
          "Default: $PGSSLMODE, else verify-full when a CA is given, else disable",
      },
      caFileFlag("sslrootcert", "server", " (default: $PGSSLROOTCERT)"),
      {
        field: "insecureSkipTlsVerify",
        kind: "boolean",
        description: "TLS without verifying the server's certificate (sslmode require; not recommended)",
      },
    ]),
    {
      field: "inPlace",
      kind: "boolean",
      modes: ["restore", "restore --in-cluster"],
      description: "Restore over the existing database (pg_restore --clean, in one transaction)",
    },
    {
      field: "toDatabase",
      kind: "string",
      modes: ["restore", "restore --in-cluster"],
      description: "Restore into this new database, beside the original",
    },
    {
      field: "noOwner",
      kind: "boolean",
      modes: ["restore"],
      description: "Restore without owners and privileges",
    },
    {
      field: "physical",
      kind: "boolean",
      modes: ["create --physical", "restore --physical", "restore --in-cluster"],
      description:
        "--create: a physical base backup of the whole cluster (pg_basebackup), the start of point-in-time " +
        "recovery. --restore: a point-in-time restore of the target's base backup and WAL into --to-data-dir",
    },
    {
      field: "toDataDir",
      kind: "string",
      modes: ["restore --physical", "restore --in-cluster"],
      description:
        "--restore --physical: the new data directory (absent or empty) to write the recovered cluster into",
    },
    {
      field: "targetTime",
      kind: "string",
      modes: ["restore --physical", "restore --in-cluster"],
      description:
        "--restore --physical: recover every transaction committed before this time (ISO 8601, e.g. " +
        "2026-12-05T13:20:00Z) and none after; default: everything in the bucket",
    },
    {
      field: "targetLsn",
      kind: "string",
      modes: ["restore --physical", "restore --in-cluster"],
      description: "--restore --physical: recover the WAL before this LSN (like 0/16B3748) and nothing after",
    },
    {
      field: "verifyServer",
      kind: "boolean",
      modes: ["verify"],
      modifies: "verify",
      description:
        "--verify: drill into a scratch database on the server the connection flags name, not a throwaway cluster",
    },
    {
      field: "slot",
      kind: "string",
      modes: ["stream-wal"],
      description:
        "Physical replication slot to stream through, created if missing (default: capsule_<target>, lowercased, other characters as _)",
    },
    {
      field: "walUploadInterval",
      kind: "string",
      modes: ["stream-wal"],
      description:
        "How often the WAL segment in progress is uploaded when it grew, like 10s or 500ms (default: 10s)",
    },
    {
      field: "raw",
      kind: "boolean",
      modes: ["download"],
      description:
        "Download the zstd-compressed dump without decompressing it (decrypted, if the backup is encrypted)",
    },
  ],

  connect: pgConnectionFrom,
  connectTarget: (connection, env) => pgConnectionFrom(targetFields(connection), env),
  describe: (conn) => describeConnection(conn),
  insecureWarning: (conn) =>
    conn.tls?.mode === "require" ? unverifiedTlsWarning(describeConnection(conn)) : undefined,

  defaultTarget: (conn) => conn.database,
  source: (conn) => ({ host: conn.host, port: conn.port, database: conn.database }),
  backup: (conn, sink, fields, context) =>
    fields["physical"] === true ? backupPhysical(conn, sink, context) : backupPostgres(conn, sink, context),
  describeBackup: () => ({ summary: "", warnings: [] }),

  checkRestore: (fields) =>
    fields["physical"] === true ? void checkPointInTimeFields(fields) : void restoreMode(fields),
  restorePointInTime,
  drillPointInTime,
  planRestore(conn, statefile, fields, env) {
    const mode = restoreMode(fields);
    const toDatabase = mode.kind === "new-database" ? mode.database : undefined;
    const target: PgConnection =
      mode.kind === "new-database" ? conn : { ...conn, database: databaseToReplace(statefile, fields, env) };
    const to = describeConnection(target, toDatabase ?? target.database);
    const id = statefile.backupId;
    return {
      to,
      question:
        mode.kind === "in-place"
          ? `OVERWRITE ${to} in place with ${id}?`
          : mode.kind === "swap"
            ? `Restore ${id} as ${to} (the current database is kept under another name)?`
            : `Restore ${id} into the new database ${to}?`,
      async run(source, context) {
        const outcome = await restorePostgres(target, source, mode, {
          ...context,
          noOwner: fields["noOwner"] === true,
        });
        return {
          lines: [
            `restored ${id} into ${outcome.database}: ${outcome.tables} tables, ${outcome.rows} rows match the backup`,
            ...(outcome.keptAs
              ? [
                  `the previous database is kept as "${outcome.keptAs}"; when you no longer need it: ` +
                    `DROP DATABASE "${outcome.keptAs}";`,
                ]
              : []),
          ],
          document: outcome,
        };
      },
    };
  },

  drill(source, fields, env, context) {
    const server = fields["verifyServer"] === true ? pgConnectionFrom(fields, env) : undefined;
    const warning = server && postgres.insecureWarning(server);
    if (warning) context.onNotice?.(`warning: ${warning}`);
    return drillPostgres(source, { ...context, server });
  },

  async findLeftovers(fields, env) {
    const leftovers: Leftover[] = [];
    // Without connection fields no server is contacted: --check must work with only a bucket.
    if (["host", "port", "database", "user"].some((f) => fields[f] !== undefined)) {
      const conn = pgConnectionFrom(fields, env);
      const maintenance = await findMaintenanceDatabase(conn);
      for (const name of await findLeftoverDatabases(conn, maintenance)) {
        leftovers.push({
          found:
            `scratch database ${name} on ${describeConnection(conn, maintenance)} was left by an interrupted ` +
            `capsule restore or drill; --check --yes drops it`,
          removed: `dropped scratch database ${name}, left by an interrupted capsule restore or drill`,
          remove: () => dropDatabase(conn, maintenance, name),
        });
      }
    }
    const scratch = [
      ...(await findScratchLeftovers(SCRATCH_LABEL)),
      ...(await findScratchLeftovers(PITR_SCRATCH_LABEL)),
    ];
    for (const leftover of scratch) {
      const what = `throwaway PostgreSQL ${leftover.dir}${leftover.serverPid ? ` (postgres pid ${leftover.serverPid} still running)` : ""}`;
      leftovers.push({
        found: `${what} was left by an interrupted drill; --check --yes removes it`,
        removed: `removed ${what}, left by an interrupted drill`,
        remove: () => removeScratchLeftover(leftover),
      });
    }
    return leftovers;
  },

  checkStreamWal: (fields, target) => void walStreamSettings(fields, target),
  streamWal: streamPostgresWal,

  downloadDecoder: (fields) =>
    fields["raw"] === true
      ? undefined
      : { decode: zstdDecompress(), what: "a pg_restore custom-format file" },
};

function restoreMode(fields: Fields): PgRestoreMode {
  for (const field of ["toDataDir", "targetTime", "targetLsn"]) {
    if (fields[field] !== undefined)
      throw configError(field, `{${field}} applies to a point-in-time restore: add {physical}`);
  }
  const toDatabase = fields["toDatabase"] as string | undefined;
  if (fields["inPlace"] === true && toDatabase !== undefined) {
    throw configError("inPlace", "choose one of {inPlace} and {toDatabase}");
  }
  if (fields["inPlace"] === true) return { kind: "in-place" };
  return toDatabase !== undefined ? { kind: "new-database", database: toDatabase } : { kind: "swap" };
}

/**
 * The database a swap or in-place restore replaces: the one named, else the one the backup was taken from — never
 * whatever PGDATABASE happens to name (#16: a backup of `shop` was swapped in as `app_copy`).
 */
function databaseToReplace(statefile: Statefile, fields: Fields, env: NodeJS.ProcessEnv): string {
  const named = fields["database"] as string | undefined;
  if (named !== undefined) return named;
  const source = statefile.source.database;
  if (!source) {
    throw configError(
      "database",
      `${statefile.backupId} does not record its source database: name the database to replace with {database}`,
    );
  }
  const fromEnv = env["PGDATABASE"];
  if (fromEnv !== undefined && fromEnv !== source) {
    throw configError(
      "database",
      `${statefile.backupId} is a backup of database "${source}" but PGDATABASE is "${fromEnv}": ` +
        `name the database to replace with {database} (or restore beside it with {toDatabase})`,
    );
  }
  return source;
}
