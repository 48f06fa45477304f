import { Command, Option, UsageError } from "clipanion";
import { pgConnectionFrom, describeConnection, type PgConnection } from "../engines/postgres/connection.js";
import { backupPostgres } from "../engines/postgres/backup.js";
import { dropDatabase, findLeftoverDatabases } from "../engines/postgres/leftovers.js";
import { findMaintenanceDatabase, restorePostgres, type PgRestoreMode } from "../engines/postgres/restore.js";
import { findScratchLeftovers, removeScratchLeftover } from "../engines/scratch-server.js";
import { zstdDecompress } from "../engines/postgres/tools.js";
import { downloadArtifact } from "../runtime/download.js";
import { drillPostgres, SCRATCH_LABEL } from "../engines/postgres/drill.js";
import type { DrillResult } from "../runtime/verify.js";
import type { BackupEntry, BackupStore } from "../storage/backup-store.js";
import { usageErrorOf } from "./base-command.js";
import { EngineCommand } from "./engine-command.js";
import { formatBytes, render } from "./render.js";

export class PgCommand extends EngineCommand {
  static override paths = [["pg"]];
  static override usage = Command.Usage({
    description: "Back up, list and restore PostgreSQL backups",
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
        "Download a file for pg_restore",
        "capsule pg --download --id ID --to app.dump --bucket s3://backups/capsule",
      ],
    ],
  });
  readonly engine = "postgresql" as const;

  host = Option.String("--host", { description: "Server host (default: $PGHOST, else localhost)" });
  port = Option.String("--port", { description: "Server port (default: $PGPORT, else 5432)" });
  database = Option.String("--database", {
    description: "Database (default: $PGDATABASE, else the user name)",
  });
  user = Option.String("--user", { description: "User (default: $PGUSER, else postgres)" });
  sslmode = Option.String("--sslmode", {
    description:
      "TLS: disable, verify-full, verify-ca, or require (unverified; needs --insecure-skip-tls-verify). " +
      "Default: $PGSSLMODE, else verify-full when a CA is given, else disable",
  });
  sslrootcert = Option.String("--sslrootcert", {
    description: "PEM file with the CA that signed the server's certificate (default: $PGSSLROOTCERT)",
  });
  insecureSkipTlsVerify = Option.Boolean("--insecure-skip-tls-verify", false, {
    description: "TLS without verifying the server's certificate (sslmode require; not recommended)",
  });
  target = Option.String("--target", {
    description: "Target name recorded in the backup (default: the database)",
  });
  inPlace = Option.Boolean("--in-place", false, {
    description: "Restore over the existing database (pg_restore --clean, in one transaction)",
  });
  toDatabase = Option.String("--to-database", {
    description: "Restore into this new database, beside the original",
  });
  noOwner = Option.Boolean("--no-owner", false, { description: "Restore without owners and privileges" });
  verifyServer = Option.Boolean("--verify-server", false, {
    description:
      "--verify: drill into a scratch database on the server the connection flags name, not a throwaway cluster",
  });
  raw = Option.Boolean("--raw", false, {
    description:
      "Download the zstd-compressed dump without decompressing it (decrypted, if the backup is encrypted)",
  });

  private connection(): PgConnection {
    let conn: PgConnection;
    try {
      conn = pgConnectionFrom(this, this.env);
    } catch (error) {
      throw usageErrorOf(error);
    }
    if (conn.tls?.mode === "require") {
      this.note(
        `warning: --insecure-skip-tls-verify: the certificate of ${describeConnection(conn)} is not checked; ` +
          `anyone on the path can read the password and the data\n`,
      );
    }
    return conn;
  }

  protected override async runCreate(): Promise<void> {
    const conn = this.connection();
    const statefile = await this.createBackup(
      this.target ?? conn.database,
      { host: conn.host, port: conn.port, database: conn.database },
      (run, context) => backupPostgres(conn, run, context),
    );
    this.note(
      `backed up ${describeConnection(conn)}: ${formatBytes(statefile.artifact?.sizeBytes ?? 0)} as ${statefile.backupId}\n`,
    );
  }

  protected override inClusterRestoreFlags(): string[] {
    if (this.inPlace && this.toDatabase) throw new UsageError("choose one of --in-place and --to-database");
    return [
      ...(this.toDatabase !== undefined ? ["--to-database", this.toDatabase] : []),
      ...(this.inPlace ? ["--in-place"] : []),
    ];
  }

  protected override async runRestore(): Promise<void> {
    if (this.inPlace && this.toDatabase) throw new UsageError("choose one of --in-place and --to-database");
    const mode: PgRestoreMode = this.inPlace
      ? { kind: "in-place" }
      : this.toDatabase
        ? { kind: "new-database", database: this.toDatabase }
        : { kind: "swap" };
    const connection = this.connection();
    const store = await this.store();
    const connectionTo = (e: BackupEntry): PgConnection =>
      mode.kind === "new-database" ? connection : { ...connection, database: this.databaseToReplace(e) };
    const where = (e: BackupEntry) =>
      describeConnection(connectionTo(e), this.toDatabase ?? connectionTo(e).database);
    const entry = await this.restorableEntry(store, (e) =>
      mode.kind === "in-place"
        ? `OVERWRITE ${where(e)} in place with ${e.ref.backupId}?`
        : mode.kind === "swap"
          ? `Restore ${e.ref.backupId} as ${where(e)} (the current database is kept under another name)?`
          : `Restore ${e.ref.backupId} into the new database ${where(e)}?`,
    );
    const conn = connectionTo(entry);
    const outcome = await this.recordingRestore(store, entry, where(entry), (signal) =>
      restorePostgres(conn, store.artifactSource(entry), mode, {
        noOwner: this.noOwner,
        onPhase: (phase) => this.note(`${phase}…\n`),
        onNotice: (line) => this.note(`${line}\n`),
        signal,
      }),
    );
    this.note(
      `restored ${entry.ref.backupId} into ${outcome.database}: ${outcome.tables} tables, ${outcome.rows} rows match the backup\n`,
    );
    if (outcome.keptAs) {
      this.note(
        `the previous database is kept as "${outcome.keptAs}"; when you no longer need it: DROP DATABASE "${outcome.keptAs}";\n`,
      );
    }
    if (this.output !== "table") this.print(render(this.output, outcome));
  }

  /**
   * The database a swap or in-place restore replaces: `--database`, else the one the backup was taken from — never
   * whatever PGDATABASE happens to name (#16: a backup of `shop` was swapped in as `app_copy`).
   */
  private databaseToReplace(entry: BackupEntry): string {
    if (this.database !== undefined) return this.database;
    const source = entry.statefile?.source.database;
    if (!source) {
      throw new UsageError(
        `${entry.ref.backupId} does not record its source database: name the database to replace with --database`,
      );
    }
    const fromEnv = this.env["PGDATABASE"];
    if (fromEnv !== undefined && fromEnv !== source) {
      throw new UsageError(
        `${entry.ref.backupId} is a backup of database "${source}" but PGDATABASE is "${fromEnv}": ` +
          `name the database to replace with --database (or restore beside it with --to-database)`,
      );
    }
    return source;
  }

  protected override drill(
    store: BackupStore,
    entry: BackupEntry,
    signal: AbortSignal,
  ): Promise<DrillResult> {
    return drillPostgres(store.artifactSource(entry), {
      ...(this.verifyServer ? { server: this.connection() } : {}),
      onPhase: (phase) => this.note(`${phase}…\n`),
      signal,
    });
  }

  /**
   * `--check` also looks at this machine for throwaway clusters a killed drill left, and, given connection flags,
   * at that server for scratch databases a killed restore or drill left (without them, no server is contacted).
   */
  protected override async checkLeftovers(): Promise<number> {
    const server = [this.host, this.port, this.database, this.user].some((f) => f !== undefined);
    let unresolved = server ? await this.checkServerLeftovers(this.connection()) : 0;
    for (const leftover of await findScratchLeftovers(SCRATCH_LABEL)) {
      const what = `throwaway PostgreSQL ${leftover.dir}${leftover.serverPid ? ` (postgres pid ${leftover.serverPid} still running)` : ""}`;
      if (this.yes) {
        await removeScratchLeftover(leftover);
        this.note(`removed ${what}, left by an interrupted drill\n`);
      } else {
        this.note(`${what} was left by an interrupted drill; --check --yes removes it\n`);
        unresolved++;
      }
    }
    return unresolved;
  }

  private async checkServerLeftovers(conn: PgConnection): Promise<number> {
    const maintenance = await findMaintenanceDatabase(conn);
    let unresolved = 0;
    for (const name of await findLeftoverDatabases(conn, maintenance)) {
      if (this.yes) {
        await dropDatabase(conn, maintenance, name);
        this.note(`dropped scratch database ${name}, left by an interrupted capsule restore or drill\n`);
      } else {
        this.note(
          `scratch database ${name} on ${describeConnection(conn, maintenance)} was left by an interrupted capsule restore or drill; --check --yes drops it\n`,
        );
        unresolved++;
      }
    }
    return unresolved;
  }

  protected override async runDownloadTo(file: string): Promise<void> {
    const store = await this.store();
    const entry = await this.entry(store);
    const bytes = await downloadArtifact(store, entry, file, {
      ...(this.raw ? {} : { decode: zstdDecompress() }),
      force: this.force,
      flag: "--to",
    });
    this.note(
      `downloaded ${formatBytes(bytes)} to ${file} (sha256 verified${this.raw ? "" : "; a pg_restore custom-format file"})\n`,
    );
  }
}
