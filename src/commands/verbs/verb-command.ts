/**
 * What every `capsule <engine> --<verb>` class shares: the engine it serves, checked names, the store, confirmation,
 * progress on stderr, and one reporter for stdout. A verb class declares only its own flags and returns a `Report`;
 * engine-commands.ts makes one class per engine and verb from it.
 */
import type { Writable } from "node:stream";
import { Option, UsageError } from "clipanion";
import { isSafeSegment, SAFE_SEGMENT_RULE } from "../../domain/backup.js";
import type { Engine, Fields } from "../../engines/engine.js";
import { clusterFrom, openBackupStore, s3OverridesOf } from "../../runtime/bucket.js";
import { hasKubeContext, storeFromCluster } from "../../runtime/cluster-bucket.js";
import { confirm } from "../../runtime/confirm.js";
import { checkRecipients, identitiesFromEnv } from "../../runtime/encryption.js";
import { type Progress, terminalProgress } from "../../runtime/progress.js";
import type { BackupEntry, BackupStore, BackupStoreOptions } from "../../storage/backup-store.js";
import type { Action } from "../action-flags.js";
import { BaseCommand, usageErrorOf } from "../base-command.js";
import { type Report, reportPieces } from "../render.js";

export abstract class VerbCommand extends BaseCommand {
  /** Set on each generated class (engine-commands.ts). */
  static engine: Engine;
  /** What the verb does, in one line: its flag's help and its command's description. */
  static summary: string;
  abstract readonly verb: Action;

  // A verb that does not take a flag leaves its property a plain value, so clipanion never declares it.
  id: string | undefined = undefined;
  cluster: string | undefined = undefined;
  target: string | undefined = undefined;
  yes = false;

  /** The verb's own flag, required: clipanion picks this class by it. */
  protected verbFlag() {
    const { summary } = this.constructor as typeof VerbCommand;
    return Option.Boolean(`--${this.verb}`, { required: true, description: summary });
  }

  protected get engine(): Engine {
    return (this.constructor as typeof VerbCommand).engine;
  }

  /** The command object as the engine reads it: its properties are the fields its flags fill. */
  protected get fields(): Fields {
    return this as unknown as Fields;
  }

  protected abstract perform(): Promise<Report>;

  async run(): Promise<number> {
    try {
      this.checkNames();
      const outcome = await this.perform();
      this.progress.stop();
      for (const piece of reportPieces(this.output, outcome)) await written(this.context.stdout, piece);
      return outcome.exitCode ?? 0;
    } finally {
      this.progress.stop();
    }
  }

  /** Every name that becomes part of an object key is one safe segment: `--id ../postgresql/ID` reaches nothing. */
  private checkNames(): void {
    const segments: Array<[string, string | undefined]> = [
      ["--id", this.id === "latest" && this.verb === "verify" ? undefined : this.id],
      ["--cluster", this.cluster],
      ["--target", this.target],
    ];
    for (const [flag, value] of segments) {
      if (value !== undefined && !isSafeSegment(value))
        throw new UsageError(`${flag} ${JSON.stringify(value)}: ${SAFE_SEGMENT_RULE}`);
    }
  }

  private progressDisplay: Progress | undefined;

  /** Created on first use: clipanion sets `context` after construction. */
  protected get progress(): Progress {
    return (this.progressDisplay ??= terminalProgress(this.context.stderr));
  }

  /** A line for the operator on stderr; clears the progress bar first so the two never overlap. */
  protected note(line: string): void {
    this.progress.stop();
    this.context.stderr.write(`${line}\n`);
  }

  protected phase = (phase: string): void => this.note(`${phase}…`);

  /** Asks before a destructive action (or proceeds with `--yes`; refuses without a terminal). */
  protected confirmAction = (question: string, signal?: AbortSignal): Promise<void> =>
    confirm(question, {
      yes: this.yes,
      stdin: this.context.stdin,
      stderr: this.context.stderr,
      ...(signal ? { signal } : {}),
    });

  /** The engine's connection from the flags, its TLS warning shown before anything connects. */
  protected connect(): unknown {
    let conn: unknown;
    try {
      conn = this.engine.connect(this.fields, this.env);
    } catch (error) {
      throw usageErrorOf(error);
    }
    const warning = this.engine.insecureWarning(conn);
    if (warning) this.note(`warning: --insecure-skip-tls-verify: ${warning}`);
    return conn;
  }

  /** What every `--in-cluster` run (runtime/in-cluster.ts) is told: the engine, the target's place, where lines go. */
  protected inClusterRun() {
    return {
      engine: this.engine.name,
      cluster: this.cluster ?? this.env["CAPSULE_CLUSTER"],
      target: this.target,
      env: this.env,
      logLine: (line: string) => this.context.stderr.write(`${line}\n`),
      note: (line: string) => this.note(line),
    };
  }

  /**
   * `--create --in-cluster` and `--restore --in-cluster`: the work runs as a Job made from the target's CronJob (its
   * own bucket, connection and encryption); its log is followed here and its exit code is capsule's.
   */
  protected async runInCluster(work: string[], confirm?: (where: string) => Promise<void>): Promise<Report> {
    const { runInCluster } = await import("../../runtime/in-cluster.js");
    const outcome = await runInCluster({
      ...this.inClusterRun(),
      work,
      ...(confirm && { beforeCreate: confirm }),
    });
    // The Job's own last line (a backup id, a restore's summary) is the result, whatever the format.
    const result = outcome.result;
    return { exitCode: outcome.exitCode, ...(result !== undefined && { table: result, document: result }) };
  }

  protected requireId(): string {
    if (!this.id) throw new UsageError(`--${this.verb} needs --id ID`);
    return this.id;
  }
}

/** A verb that works on the bucket: where it is, and which cluster's backups are meant. */
export abstract class StoreVerb extends VerbCommand {
  override cluster = Option.String("--cluster", {
    description: "Cluster id (default: $CAPSULE_CLUSTER, else local)",
  });
  bucket = Option.String("--bucket", {
    description: "s3://bucket/prefix or file:///dir (default: $CAPSULE_BUCKET)",
  });
  endpoint = Option.String("--endpoint", { description: "S3 endpoint URL (default: $AWS_ENDPOINT_URL_S3)" });
  region = Option.String("--region", { description: "S3 region (default: $AWS_REGION)" });
  sse: string | undefined = undefined;
  sseKmsKeyId: string | undefined = undefined;
  encryptTo: string[] | undefined = undefined;

  /** Set when the bucket was found through a CnvrgApp: its id is the cluster. */
  protected discoveredCluster: string | undefined;

  /**
   * The backup store: `--bucket` or `CAPSULE_BUCKET`; else, with a kube context, the bucket of the cluster's CnvrgApp
   * (`--cluster ns.name`, or the only one). Call before `clusterId()`.
   */
  protected async store(): Promise<BackupStore> {
    const options: BackupStoreOptions = {
      ...(this.progress.onTransfer ? { onTransfer: this.progress.onTransfer } : {}),
      ...(this.encryptTo ? { encryptTo: checkRecipients(this.encryptTo, "--encrypt-to") } : {}),
      identities: identitiesFromEnv(this.env),
    };
    if (!this.bucket && !this.env["CAPSULE_BUCKET"] && hasKubeContext(this.env)) {
      const found = await storeFromCluster(
        this.engine.name,
        this.cluster ?? this.env["CAPSULE_CLUSTER"],
        this.env,
        options,
        s3OverridesOf(this),
      );
      this.discoveredCluster = found.cluster;
      return found.store;
    }
    return openBackupStore(this, this.env, options);
  }

  protected clusterId(): string {
    return this.discoveredCluster ?? clusterFrom(this.cluster, this.env);
  }

  protected scope(): { cluster: string; engine: Engine["name"] } {
    return { cluster: this.clusterId(), engine: this.engine.name };
  }

  protected async entry(store: BackupStore): Promise<BackupEntry> {
    return store.get({ ...this.scope(), backupId: this.requireId() });
  }
}

/** The flags several verbs declare, each with the one description they all show. */
export const flag = {
  id: () => Option.String("--id", { description: "Backup id" }),
  yes: () => Option.Boolean("--yes", false, { description: "Do not ask before destructive actions" }),
  force: () => Option.Boolean("--force", false, { description: "Restore a backup that did not succeed" }),
  sse: () =>
    Option.String("--sse", { description: "S3 server-side encryption of uploads: AES256 or aws:kms" }),
  sseKmsKeyId: () =>
    Option.String("--sse-kms-key-id", { description: "KMS key id or ARN for --sse aws:kms" }),
  inCluster: () =>
    Option.Boolean("--in-cluster", false, {
      description:
        "Run as a Job made from the target's CronJob, so credentials stay in the cluster; its log is followed and its exit code returned",
    }),
};

/**
 * Writes `text` and waits while the stream's buffer is full. A stdout the reader closed (`| head`; cli.ts ignores its
 * EPIPE) takes nothing more and ends the wait at once, so the command still returns its own exit code.
 */
function written(out: NodeJS.WritableStream, text: string): Promise<void> {
  const closed = () => (out as Writable).destroyed;
  if (closed() || out.write(text) || closed()) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      out.off("drain", done).off("close", done).off("error", done);
      resolve();
    };
    out.on("drain", done).on("close", done).on("error", done);
  });
}
