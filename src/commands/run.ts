import { writeFile } from "node:fs/promises";
import { Command, Option, UsageError } from "clipanion";
import { CapsuleError, ErrorCode } from "../domain/errors.js";
import type { Statefile } from "../domain/statefile.js";
import type { Engine } from "../engines/engine.js";
import { allEngines, engineNamed, walStreamingEngines } from "../engines/registry.js";
import { createLogger, type Logger } from "../log.js";
import { REQUEST_ENV, RUN_ENV, STREAM_WAL_HEARTBEAT, type RunTarget } from "../plan/run-contract.js";
import { backUp } from "../runtime/backup.js";
import { prune } from "../runtime/prune.js";
import { recoveryTargetOf } from "../domain/recovery-target.js";
import { restoreToPointInTime } from "../runtime/point-in-time.js";
import { restoreBackup } from "../runtime/restore.js";
import { streamWalToStore } from "../runtime/stream-wal.js";
import { readRunTarget, runStore } from "../runtime/run-target.js";
import { backupToVerify, verifyWithEngine } from "../runtime/verify.js";
import type { BackupStore } from "../storage/backup-store.js";
import { BaseCommand, declareEngineFlags, flagOf } from "./base-command.js";

/** The fields of a target's connection, which CAPSULE_TARGET sets; every other field is one of this command's flags. */
const CONNECTION_FIELDS = new Set(["host", "port", "database", "url"]);

/**
 * The engines' restore flags that an in-cluster restore forwards to `capsule run --restore` (their mode
 * `restore --in-cluster`), each with the engines that take it.
 */
const RESTORE_FLAGS = allEngines().reduce((flags, engine) => {
  for (const flag of engine.flags.filter((f) => f.modes.includes("restore --in-cluster"))) {
    const known = flags.get(flag.field);
    flags.set(flag.field, { ...flag, engines: [...(known?.engines ?? []), engine.name] });
  }
  return flags;
}, new Map<string, Engine["flags"][number] & { engines: string[] }>());

/**
 * `capsule run`: what a CronJob's pod executes. One backup of one target, its statefile, then the target's
 * retention. Exits non-zero on failure so the Job records it. Logs are JSON lines for the cluster's log pipeline.
 */
export class RunCommand extends BaseCommand {
  static override paths = [["run"]];
  static override usage = Command.Usage({
    description: "Take one backup of one target (the per-run mode CronJobs use), or restore one",
    details: `
      Reads the target from CAPSULE_TARGET (JSON written by the plan compiler) and the secrets from their own
      variables. --cluster and --target must match CAPSULE_TARGET: they make the Job's purpose visible in
      'kubectl get pods -o wide' and catch a CronJob pointed at the wrong target.
    `,
  });

  cluster = Option.String("--cluster", { description: "Cluster id (must match CAPSULE_TARGET)" });
  target = Option.String("--target", { description: "Target name (must match CAPSULE_TARGET)" });
  noPrune = Option.Boolean("--no-prune", false, { description: "Skip retention after the backup" });
  verify = Option.String("--verify", {
    description:
      "Run the target's restore drill instead of a backup: latest (the newest succeeded backup) or an id",
  });
  restore = Option.String("--restore", {
    description:
      "Restore this backup id into the target's own database instead of taking a backup (with --physical: " +
      "an id or latest, into --to-data-dir)",
  });
  streamWal = Option.Boolean("--stream-wal", false, {
    description:
      "Stream the target's write-ahead log into the bucket until SIGTERM instead of taking a backup (PostgreSQL; the PITR Deployment)",
  });

  constructor() {
    super();
    // The engines' in-cluster restore flags, declared here as clipanion options.
    declareEngineFlags(
      this,
      RESTORE_FLAGS.values(),
      (flag) => `--restore, ${flag.engines.join(", ")}: ${flag.description}`,
    );
  }

  /** Only the restore flags are this command's own; every other field comes from CAPSULE_TARGET or its Secrets. */
  protected override isFlag(field: string): boolean {
    return RESTORE_FLAGS.has(field);
  }

  protected override fieldName(field: string): string {
    return CONNECTION_FIELDS.has(field) ? `${RUN_ENV.target} /connection/${field}` : super.fieldName(field);
  }

  async run(): Promise<number> {
    const target = readRunTarget(this.env);
    if (this.cluster && this.cluster !== target.cluster) {
      throw new UsageError(
        `--cluster ${this.cluster} does not match CAPSULE_TARGET's cluster ${target.cluster}`,
      );
    }
    if (this.target && this.target !== target.target) {
      throw new UsageError(`--target ${this.target} does not match CAPSULE_TARGET's target ${target.target}`);
    }
    const engine = engineNamed(target.engine);
    const log = createLogger({
      write: (line) => this.context.stderr.write(line + "\n"),
      base: { cluster: target.cluster, target: target.target, engine: target.engine },
    });
    const store = runStore(target, this.env);
    const fields = this.restoreFields(target, engine);
    if (this.streamWal) return this.runStreamWal(target, engine, store, log);
    if (this.verify) return this.runDrill(target, engine, store, this.verify, log);
    if (this.restore) return this.runRestore(target, engine, store, this.restore, fields, log);
    const { requestId } = this.trigger;
    const statefile = await backUp(
      store,
      engine,
      engine.connectTarget(target.connection, this.env),
      {
        cluster: target.cluster,
        target: target.target,
        trigger: requestId ? { type: "request", requestId, ...this.trigger } : { type: "schedule" },
        // Only a backup modifier can be set here (restoreFields refused the rest without --restore).
        fields,
      },
      log,
    );
    if (!this.noPrune) await this.prune(target, statefile, store, log);
    this.print(statefile.backupId);
    return 0;
  }

  /**
   * The restore flags given, checked before anything is contacted: they belong to `--restore` and to one engine
   * each, and the target's engine must find them consistent. Anything else is a mistake worth one line.
   */
  private restoreFields(target: RunTarget, engine: Engine): Record<string, unknown> {
    const given = [...RESTORE_FLAGS].filter(([field, flag]) => {
      const value = (this as unknown as Record<string, unknown>)[field];
      return flag.kind === "boolean" ? value === true : value !== undefined;
    });
    // A flag that is also a backup modifier (pg's --physical) is the backup's when there is no --restore.
    const restoreOnly = given.filter(([, flag]) => !flag.modes.some((m) => m.startsWith("create ")));
    if (restoreOnly.length > 0 && !this.restore)
      throw new UsageError(`${flagOf(restoreOnly[0]![0])} needs --restore ID`);
    if (this.restore && this.verify) throw new UsageError("choose one of --restore and --verify");
    const foreign = given.find(([, flag]) => !flag.engines.includes(engine.name));
    if (foreign) {
      throw new UsageError(
        `${flagOf(foreign[0])} applies to ${foreign[1].engines.join(", ")} targets, not ${engine.name}`,
      );
    }
    const fields: Record<string, unknown> = Object.fromEntries(
      given.map(([field]) => [field, (this as unknown as Record<string, unknown>)[field]]),
    );
    if (this.restore) engine.checkRestore?.(fields);
    return fields;
  }

  /** The bucket request or `--in-cluster` run this Job serves, from its env; empty for a scheduled run. */
  private get trigger(): { requestId?: string; requestedBy?: string } {
    const requestId = this.env[REQUEST_ENV.requestId];
    const requestedBy = this.env[REQUEST_ENV.requestedBy];
    return { ...(requestId && { requestId }), ...(requestedBy && { requestedBy }) };
  }

  /**
   * A restore of the target's own database inside its pod (`--in-cluster`, bucket requests): the target's
   * connection is the one its plan names, so the restore replaces that database. With `--physical`
   * (`--restore ID|latest --physical --to-data-dir DIR [--target-time|--target-lsn]`), the target's base backup (the
   * one named, or with `latest` the newest that reaches the recovery target) and WAL into a data directory the
   * pod mounts — the in-cluster physical restore's Job.
   */
  private async runRestore(
    target: RunTarget,
    engine: Engine,
    store: BackupStore,
    id: string,
    fields: Record<string, unknown>,
    log: Logger,
  ): Promise<number> {
    const physical = fields["physical"] === true;
    const entry = physical
      ? undefined
      : await store.get({ cluster: target.cluster, engine: target.engine, backupId: id });
    if (entry?.statefile && entry.statefile.target !== target.target) {
      throw new CapsuleError(
        ErrorCode.NotRestorable,
        `${id} is a backup of target ${entry.statefile.target}, not ${target.target}`,
      );
    }
    const { trigger } = this;
    log.info(physical ? "point-in-time restore started" : "restore started", {
      backupId: id,
      ...(trigger.requestId && { requestId: trigger.requestId }),
    });
    const progress = {
      trigger,
      onPhase: (phase: string) => log.info(phase, { backupId: id }),
      onNotice: (line: string) => log.warn(line, { backupId: id }),
    };
    const conn = entry && engine.connectTarget(target.connection, this.env);
    const result = entry
      ? await restoreBackup(
          store,
          entry,
          (statefile: Statefile) =>
            engine.planRestore(conn, statefile, { ...target.connection, ...fields }, this.env),
          progress,
        )
      : await restoreToPointInTime(store, {
          cluster: target.cluster,
          engine,
          target: target.target,
          ...(id !== "latest" && { id }),
          recoveryTarget: recoveryTargetOf(fields),
          fields,
          ...progress,
        });
    const summary = result.lines.join("; ");
    log.info("restore succeeded", { backupId: id, summary });
    this.print(summary);
    return 0;
  }

  /**
   * The target's WAL stream (the PITR Deployment's one container): runs until SIGTERM, then stores and confirms
   * what it received and exits 0.
   */
  private async runStreamWal(
    target: RunTarget,
    engine: Engine,
    store: BackupStore,
    log: Logger,
  ): Promise<number> {
    const other = [
      ["--restore", this.restore !== undefined],
      ["--verify", this.verify !== undefined],
      ["--no-prune", this.noPrune],
    ].find(([, given]) => given);
    if (other) throw new UsageError(`${String(other[0])} does not apply to --stream-wal`);
    if (!engine.streamWal)
      throw new UsageError(
        `--stream-wal applies to ${walStreamingEngines().join(" or ")} targets, not ${engine.name}`,
      );
    // The Deployment's liveness probe reads this file's age; a failed touch must not stop the streaming.
    const heartbeat = this.env[STREAM_WAL_HEARTBEAT.env] || STREAM_WAL_HEARTBEAT.file;
    const alive = () => void writeFile(heartbeat, "").catch(() => undefined);
    alive();
    const outcome = await streamWalToStore(store, engine, engine.connectTarget(target.connection, this.env), {
      cluster: target.cluster,
      target: target.target,
      fields: {},
      log,
      alive,
    });
    log.info(outcome.line, { ...outcome.document });
    return 0;
  }

  /** A scheduled restore drill: exits non-zero when the backup does not prove out, so the Job (and alerts) see it. */
  private async runDrill(
    target: RunTarget,
    engine: Engine,
    store: BackupStore,
    id: string,
    log: Logger,
  ): Promise<number> {
    const entry = await backupToVerify(
      store,
      { cluster: target.cluster, engine: target.engine, target: target.target },
      id,
    );
    try {
      const verification = await verifyWithEngine(store, entry, engine, {}, this.env);
      log.info("backup verified", {
        backupId: entry.ref.backupId,
        method: verification.method,
        details: verification.details,
      });
    } catch (error) {
      log.error("verification failed", {
        backupId: entry.ref.backupId,
        error: (error as Error).message,
        ...(error instanceof CapsuleError && { code: error.code }),
      });
      throw error;
    }
    this.print(entry.ref.backupId);
    return 0;
  }

  /** Retention runs only after a success, so a failing schedule can never expire the good backups. */
  private async prune(
    target: RunTarget,
    statefile: Statefile,
    store: BackupStore,
    log: Logger,
  ): Promise<void> {
    try {
      const report = await prune(store, {
        scope: { cluster: target.cluster, engine: target.engine, target: target.target },
        policyFor: () => ({ policy: target.retention, source: "the plan" }),
        notice: (line) => log.info(line),
      });
      const result = report.targets[0]!;
      // Each deletion with its reason, so the Job's log answers "why is that backup gone?".
      log.info("retention applied", {
        backupId: statefile.backupId,
        kept: result.keep.length,
        deleted: result.delete
          .filter((d) => !result.spared.includes(d.backupId))
          .map(({ backupId, reason }) => ({ backupId, reason })),
        ...(result.wal
          ? {
              wal: {
                deletedSegments: result.wal.deleted,
                deletedBytes: result.wal.deletedBytes,
                keptSegments: result.wal.listed - result.wal.deleted,
                ...(result.wal.keptAll ? { keptAll: result.wal.keptAll } : {}),
              },
            }
          : {}),
      });
    } catch (error) {
      // The backup itself succeeded and is committed; a retention failure is reported, not fatal.
      log.warn("retention failed", { error: (error as Error).message });
    }
  }
}
