import { Command, Option, UsageError } from "clipanion";
import { backupPostgres } from "../engines/postgres/backup.js";
import { backupRedis } from "../engines/redis/backup.js";
import { backupElasticsearch } from "../engines/elasticsearch/backup.js";
import { drillElasticsearch } from "../engines/elasticsearch/drill.js";
import { drillPostgres } from "../engines/postgres/drill.js";
import { drillRedis } from "../engines/redis/drill.js";
import { CapsuleError, ErrorCode } from "../domain/errors.js";
import { createLogger } from "../log.js";
import { type DrillResult, verifyBackup } from "../runtime/verify.js";
import { REQUEST_ENV, RUN_ENV, type RunTarget } from "../plan/run-contract.js";
import { restoreTarget } from "../runtime/restore-target.js";
import { readRunTarget, runStore } from "../runtime/run-target.js";
import { esConnectionOf, pgConnectionOf, redisConnectionOf } from "../runtime/target-connection.js";
import { takeBackup, type EngineBackup } from "../runtime/take-backup.js";
import { applyRetention } from "../storage/retention.js";
import type { Statefile } from "../domain/statefile.js";
import { BaseCommand } from "./base-command.js";

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
    description: "Restore this backup id into the target's own database instead of taking a backup",
  });
  toDatabase = Option.String("--to-database", {
    description: "--restore, PostgreSQL: into this new database beside the original",
  });
  inPlace = Option.Boolean("--in-place", false, {
    description: "--restore, PostgreSQL: over the live database (pg_restore --clean)",
  });
  replace = Option.Boolean("--replace", false, {
    description: "--restore, Elasticsearch: delete and recreate indices that exist",
  });
  indices = Option.String("--indices", {
    description: "--restore, Elasticsearch: which of the backup's indices (comma-separated patterns)",
  });

  protected override readonly fieldsAreFlags = false;

  /** A connection field comes from CAPSULE_TARGET; the others are this command's own flags. */
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
    const log = createLogger({
      write: (line) => this.context.stderr.write(line + "\n"),
      base: { cluster: target.cluster, target: target.target, engine: target.engine },
    });
    const store = runStore(target, this.env);
    this.checkRestoreFlags(target);
    const requestId = this.env[REQUEST_ENV.requestId];
    const requestedBy = this.env[REQUEST_ENV.requestedBy];
    if (this.verify) return this.runDrill(target, store, this.verify, log);
    if (this.restore) {
      const entry = await store.get({
        cluster: target.cluster,
        engine: target.engine,
        backupId: this.restore,
      });
      log.info("restore started", { backupId: this.restore, ...(requestId && { requestId }) });
      const summary = await restoreTarget(target, this.env, store, entry, {
        ...(this.toDatabase !== undefined && { toDatabase: this.toDatabase }),
        inPlace: this.inPlace,
        replace: this.replace,
        ...(this.indices !== undefined && { indices: this.indices }),
        trigger: { ...(requestId && { requestId }), ...(requestedBy && { requestedBy }) },
        onPhase: (phase) => log.info(phase, { backupId: this.restore }),
      });
      log.info("restore succeeded", { backupId: this.restore, summary });
      this.print(summary);
      return 0;
    }
    const statefile = await takeBackup(
      store,
      {
        cluster: target.cluster,
        target: target.target,
        engine: target.engine,
        trigger: requestId
          ? { type: "request", requestId, ...(requestedBy ? { requestedBy } : {}) }
          : { type: "schedule" },
        source: sourceOf(target),
      },
      this.engineFor(target),
      log,
    );
    if (!this.noPrune) await this.prune(target, statefile, store, log);
    this.print(statefile.backupId);
    return 0;
  }

  /** Restore flags belong to `--restore` and to one engine each: anything else is a mistake worth one line. */
  private checkRestoreFlags(target: RunTarget): void {
    const used = (
      [
        ["--to-database", this.toDatabase !== undefined, "postgresql"],
        ["--in-place", this.inPlace, "postgresql"],
        ["--replace", this.replace, "elasticsearch"],
        ["--indices", this.indices !== undefined, "elasticsearch"],
      ] as const
    ).filter(([, set]) => set);
    if (used.length > 0 && !this.restore) throw new UsageError(`${used[0]![0]} needs --restore ID`);
    if (this.restore && this.verify) throw new UsageError("choose one of --restore and --verify");
    const foreign = used.find(([, , engine]) => engine !== target.engine);
    if (foreign) throw new UsageError(`${foreign[0]} applies to ${foreign[2]} targets, not ${target.engine}`);
    if (this.toDatabase !== undefined && this.inPlace)
      throw new UsageError("choose one of --in-place and --to-database");
  }

  /** A scheduled restore drill: exits non-zero when the backup does not prove out, so the Job (and alerts) see it. */
  private async runDrill(
    target: RunTarget,
    store: ReturnType<typeof runStore>,
    id: string,
    log: ReturnType<typeof createLogger>,
  ): Promise<number> {
    const scope = { cluster: target.cluster, engine: target.engine, target: target.target };
    const entry =
      id === "latest"
        ? (await store.list(scope)).find((e) => e.state === "succeeded")
        : await store.get({ cluster: target.cluster, engine: target.engine, backupId: id });
    if (!entry || entry.state !== "succeeded") {
      throw new CapsuleError(
        ErrorCode.NotFound,
        `no succeeded backup of ${target.cluster}/${target.target} to verify (${id})`,
      );
    }
    // The signal reaches the engines' drills that take one (#16: interrupted drills clean up).
    const drill = (signal: AbortSignal): Promise<DrillResult> => {
      switch (target.engine) {
        case "postgresql":
          return drillPostgres(store.artifactSource(entry), { signal });
        case "redis":
          return drillRedis(store.artifactSource(entry), { signal });
        case "elasticsearch":
          return drillElasticsearch(store.artifactSource(entry), { signal });
      }
    };
    try {
      const verification = await verifyBackup(store, entry, drill);
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

  private engineFor(target: RunTarget): EngineBackup {
    switch (target.engine) {
      case "postgresql": {
        const conn = pgConnectionOf(target, this.env);
        return (run, context) => backupPostgres(conn, run, context);
      }
      case "redis": {
        const conn = redisConnectionOf(target, this.env);
        return (run, context) => backupRedis(conn, run, context);
      }
      case "elasticsearch": {
        const conn = esConnectionOf(target, this.env);
        return (run, context) => backupElasticsearch(conn, run, context);
      }
    }
  }

  /** Retention runs only after a success, so a failing schedule can never expire the good backups. */
  private async prune(
    target: RunTarget,
    statefile: Statefile,
    store: ReturnType<typeof runStore>,
    log: ReturnType<typeof createLogger>,
  ): Promise<void> {
    try {
      const result = await applyRetention(
        store,
        { cluster: target.cluster, engine: target.engine, target: target.target },
        target.retention,
      );
      // Each deletion with its reason, so the Job's log answers "why is that backup gone?".
      log.info("retention applied", {
        backupId: statefile.backupId,
        kept: result.keep.length,
        deleted: result.delete
          .filter((d) => result.deleted.includes(d.backupId))
          .map(({ backupId, reason }) => ({ backupId, reason })),
      });
    } catch (error) {
      // The backup itself succeeded and is committed; a retention failure is reported, not fatal.
      log.warn("retention failed", { error: (error as Error).message });
    }
  }
}

const CONNECTION_FIELDS = new Set(["host", "port", "database", "url"]);

function sourceOf(target: RunTarget): Statefile["source"] {
  return {
    ...(target.connection.host ? { host: target.connection.host } : {}),
    port: target.connection.port,
    ...(target.connection.database ? { database: target.connection.database } : {}),
  };
}
