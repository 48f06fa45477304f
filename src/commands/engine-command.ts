import { Option, UsageError } from "clipanion";
import { CapsuleError, ErrorCode, messageOf } from "../errors.js";
import { clusterFrom, openBackupStore } from "../runtime/bucket.js";
import { confirm } from "../runtime/confirm.js";
import { downloadArtifact } from "../runtime/download.js";
import { type Progress, terminalProgress } from "../runtime/progress.js";
import { recordRestore } from "../runtime/record-restore.js";
import { takeBackup, type EngineBackup } from "../runtime/take-backup.js";
import type { BackupEntry, BackupStore } from "../storage/backup-store.js";
import { isSafeSegment } from "../storage/layout.js";
import type { Statefile } from "../storage/statefile.js";
import type { Engine } from "../storage/layout.js";
import { BaseCommand } from "./base-command.js";
import { backupsTable, entryDocument, formatBytes, render } from "./render.js";

const ACTIONS = ["create", "list", "describe", "download", "restore", "delete"] as const;
type Action = (typeof ACTIONS)[number];

/**
 * `capsule <engine> --<action>`: the admin surface shared by every engine (the original capsule's flag-verb style).
 * Store-only actions (list, describe, download, delete) live here; an engine supplies create and restore.
 */
export abstract class EngineCommand extends BaseCommand {
  abstract readonly engine: Engine;

  create = Option.Boolean("--create", false, { description: "Take a backup now" });
  list = Option.Boolean("--list", false, { description: "List backups, newest first" });
  describe = Option.Boolean("--describe", false, { description: "Show one backup's statefile" });
  download = Option.Boolean("--download", false, {
    description: "Download a backup's artifact to --to FILE",
  });
  restore = Option.Boolean("--restore", false, { description: "Restore a backup" });
  delete = Option.Boolean("--delete", false, { description: "Delete a backup (artifact and statefile)" });

  id = Option.String("--id", { description: "Backup id" });
  cluster = Option.String("--cluster", { description: "Cluster id (default: $CAPSULE_CLUSTER, else local)" });
  bucket = Option.String("--bucket", {
    description: "s3://bucket/prefix or file:///dir (default: $CAPSULE_BUCKET)",
  });
  endpoint = Option.String("--endpoint", { description: "S3 endpoint URL (default: $AWS_ENDPOINT_URL_S3)" });
  region = Option.String("--region", { description: "S3 region (default: $AWS_REGION)" });
  to = Option.String("--to", { description: "Target file for --download" });
  yes = Option.Boolean("--yes", false, { description: "Do not ask before destructive actions" });
  force = Option.Boolean("--force", false, { description: "Restore a backup that did not succeed" });

  private progressDisplay: Progress | undefined;

  /** A message for the operator on stderr; clears the progress bar first so the two never overlap. */
  protected note(message: string): void {
    this.progress.stop();
    this.context.stderr.write(message);
  }

  /** Created on first use: clipanion sets `context` after construction. */
  private get progress(): Progress {
    return (this.progressDisplay ??= terminalProgress(this.context.stderr));
  }

  async run(): Promise<number | void> {
    try {
      return await this.dispatch(this.action());
    } finally {
      this.progress.stop();
    }
  }

  private dispatch(action: Action): Promise<number | void> {
    switch (action) {
      case "list":
        return this.runList();
      case "describe":
        return this.runDescribe();
      case "download":
        return this.runDownload();
      case "delete":
        return this.runDelete();
      case "create":
        return this.runCreate();
      case "restore":
        return this.runRestore();
    }
  }

  protected abstract runCreate(): Promise<number | void>;
  protected abstract runRestore(): Promise<number | void>;

  protected store(): BackupStore {
    return openBackupStore({ bucket: this.bucket, endpoint: this.endpoint, region: this.region }, this.env, {
      ...(this.progress.onTransfer ? { onTransfer: this.progress.onTransfer } : {}),
    });
  }

  protected clusterId(): string {
    return clusterFrom(this.cluster, this.env);
  }

  protected requireId(): string {
    if (!this.id) throw new UsageError(`--${this.action()} needs --id ID`);
    return this.id;
  }

  protected async entry(store: BackupStore) {
    return store.get({ cluster: this.clusterId(), engine: this.engine, backupId: this.requireId() });
  }

  private action(): Action {
    const chosen = ACTIONS.filter((a) => this[a]);
    if (chosen.length !== 1) {
      throw new UsageError(`choose exactly one of ${ACTIONS.map((a) => `--${a}`).join(", ")}`);
    }
    return chosen[0]!;
  }

  private async runList(): Promise<void> {
    const entries = await this.store().list({ cluster: this.clusterId(), engine: this.engine });
    if (this.output === "table") this.print(entries.length ? backupsTable(entries) : "no backups");
    else this.print(render(this.output, entries.map(entryDocument)));
  }

  private async runDescribe(): Promise<void> {
    const entry = await this.entry(this.store());
    this.print(render(this.output === "table" ? "yaml" : this.output, entryDocument(entry)));
  }

  private async runDownload(): Promise<void> {
    if (!this.to) throw new UsageError("--download needs --to FILE");
    await this.runDownloadTo(this.to);
  }

  /** Downloads the stored artifact as it is; engines override to hand out what their own tools read. */
  protected async runDownloadTo(file: string): Promise<void> {
    const store = this.store();
    const bytes = await downloadArtifact(store, await this.entry(store), file, { force: this.force });
    this.note(`downloaded ${formatBytes(bytes)} to ${file} (sha256 verified)\n`);
  }

  private async runDelete(): Promise<void> {
    const store = this.store();
    const entry = await this.entry(store);
    await confirm(`Delete backup ${entry.ref.backupId} (${entry.state}) of cluster ${entry.ref.cluster}?`, {
      yes: this.yes,
      stdin: this.context.stdin,
      stderr: this.context.stderr,
    });
    await store.delete(entry.ref);
    this.note(`deleted ${entry.ref.backupId}\n`);
  }

  /** Takes one backup through the run protocol and prints its id (or its statefile with `-o json|yaml`). */
  protected async createBackup(
    target: string,
    source: Statefile["source"],
    engine: EngineBackup,
  ): Promise<Statefile> {
    if (!isSafeSegment(target)) {
      throw new UsageError(`--target ${JSON.stringify(target)}: use letters, digits, ".", "_" and "-"`);
    }
    const statefile = await takeBackup(
      this.store(),
      { cluster: this.clusterId(), target, engine: this.engine, trigger: { type: "manual" }, source },
      engine,
    );
    this.print(this.output === "table" ? statefile.backupId : render(this.output, statefile));
    return statefile;
  }

  /**
   * The backup `--id` names, if it may be restored: only a succeeded one unless `--force`, and only once the
   * operator confirmed `question` (or passed `--yes`).
   */
  protected async restorableEntry(
    store: BackupStore,
    question: (entry: BackupEntry) => string,
  ): Promise<BackupEntry> {
    const entry = await this.entry(store);
    if (entry.state !== "succeeded" && !this.force) {
      throw new CapsuleError(
        ErrorCode.NotRestorable,
        `${entry.ref.backupId} is ${entry.state}: only succeeded backups are restored (--force to try anyway)`,
      );
    }
    await confirm(question(entry), { yes: this.yes, stdin: this.context.stdin, stderr: this.context.stderr });
    return entry;
  }

  /** Runs a restore and appends its outcome, success or failure, to the backup's statefile. */
  protected async recordingRestore<T>(
    store: BackupStore,
    entry: BackupEntry,
    to: string,
    work: () => Promise<T>,
  ): Promise<T> {
    try {
      const outcome = await work();
      await recordRestore(store, entry, { to, result: "succeeded" });
      return outcome;
    } catch (error) {
      await recordRestore(store, entry, { to, result: "failed", message: messageOf(error) }).catch(
        () => undefined,
      );
      throw error;
    }
  }

  /** For engines whose backup path is not built yet: one honest line, never a fake success. */
  protected notBuilt(what: string): CapsuleError {
    return new CapsuleError(
      ErrorCode.NotImplemented,
      `${what} is not implemented yet in this version of capsule`,
    );
  }
}
