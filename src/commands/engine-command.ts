import { Option, UsageError } from "clipanion";
import { CapsuleError, ErrorCode } from "../domain/errors.js";
import { clusterFrom, openBackupStore, s3OverridesOf } from "../runtime/bucket.js";
import { hasKubeContext, storeFromCluster } from "../runtime/cluster-bucket.js";
import { confirm } from "../runtime/confirm.js";
import { checkDestination, downloadArtifact } from "../runtime/download.js";
import { checkRecipients, identitiesFromEnv } from "../runtime/encryption.js";
import { type Progress, terminalProgress } from "../runtime/progress.js";
import { recordedRestore } from "../runtime/record-restore.js";
import { type DrillResult, verifyBackup } from "../runtime/verify.js";
import { takeBackup, type EngineBackup } from "../runtime/take-backup.js";
import type { BackupEntry, BackupStore, BackupStoreOptions } from "../storage/backup-store.js";
import { isSafeSegment, SAFE_SEGMENT_RULE } from "../domain/backup.js";
import { redactSource } from "../redact.js";
import type { Statefile } from "../domain/statefile.js";
import { checkIntegrity } from "../storage/integrity.js";
import { deletePlanned, planRetention, type RetentionDecision } from "../storage/retention.js";
import {
  applyFlags,
  describePolicy,
  type FoundPolicy,
  policiesFromCluster,
  policiesFromPlans,
  type RetentionFlags,
} from "../runtime/retention-policy.js";
import type { EngineName } from "../domain/backup.js";
import { ACTIONS, type Action, propertyOf, refusedFlag, tableFlags } from "./action-flags.js";
import { BaseCommand } from "./base-command.js";
import { backupsTable, decisionsTable, entryDocument, findingsTable, formatBytes, render } from "./render.js";

/**
 * `capsule <engine> --<action>`: the admin surface shared by every engine (the original capsule's flag-verb style).
 * Store-only actions (list, describe, download, delete) live here; an engine supplies create and restore.
 */
export abstract class EngineCommand extends BaseCommand {
  abstract readonly engine: EngineName;

  create = Option.Boolean("--create", false, { description: "Take a backup now" });
  list = Option.Boolean("--list", false, { description: "List backups, newest first" });
  describe = Option.Boolean("--describe", false, { description: "Show one backup's statefile" });
  download = Option.Boolean("--download", false, {
    description: "Download a backup's artifact to --to FILE",
  });
  restore = Option.Boolean("--restore", false, { description: "Restore a backup" });
  delete = Option.Boolean("--delete", false, { description: "Delete a backup (artifact and statefile)" });
  prune = Option.Boolean("--prune", false, {
    description:
      "Apply the target's retention (--target, or every target): the plan's policy from --plans, else from the " +
      "target's CronJob when the bucket comes from the kube context; --keep-* flags override it field by field; " +
      "with neither, --keep-last is required. Only restorable backups (succeeded, verification not failed, artifact " +
      "whole) fill keep slots, verified ones first; the newest restorable and the newest verified backup are never " +
      "deleted, nor is a running one; damaged backups are left for an operator",
  });
  verify = Option.Boolean("--verify", false, {
    description: "Prove a backup (--id ID or latest): checksum, then a restore drill into a scratch target",
  });
  check = Option.Boolean("--check", false, {
    description: "Find missing or resized artifacts, unreadable statefiles and orphans (exit 1 if any)",
  });

  id = Option.String("--id", { description: "Backup id" });
  cluster = Option.String("--cluster", { description: "Cluster id (default: $CAPSULE_CLUSTER, else local)" });
  bucket = Option.String("--bucket", {
    description: "s3://bucket/prefix or file:///dir (default: $CAPSULE_BUCKET)",
  });
  endpoint = Option.String("--endpoint", { description: "S3 endpoint URL (default: $AWS_ENDPOINT_URL_S3)" });
  region = Option.String("--region", { description: "S3 region (default: $AWS_REGION)" });
  encryptTo = Option.Array("--encrypt-to", {
    description:
      "--create: encrypt the artifact to this age recipient (age1… public key; repeatable). Decrypting reads the " +
      "identity from $CAPSULE_AGE_IDENTITY or the file $CAPSULE_AGE_IDENTITY_FILE, never from a flag",
  });
  sse = Option.String("--sse", { description: "S3 server-side encryption of uploads: AES256 or aws:kms" });
  sseKmsKeyId = Option.String("--sse-kms-key-id", { description: "KMS key id or ARN for --sse aws:kms" });
  to = Option.String("--to", { description: "Target file for --download" });
  yes = Option.Boolean("--yes", false, { description: "Do not ask before destructive actions" });
  inCluster = Option.Boolean("--in-cluster", false, {
    description:
      "--create/--restore: run as a Job made from the target's CronJob, so credentials stay in the cluster; its log is followed and its exit code returned",
  });
  force = Option.Boolean("--force", false, { description: "Restore a backup that did not succeed" });
  dryRun = Option.Boolean("--dry-run", false, {
    description: "--prune: show what would go and why, delete nothing",
  });
  keepLast = Option.String("--keep-last", {
    description: "--prune: newest restorable backups to keep (default: the plan's)",
  });
  keepDaily = Option.String("--keep-daily", {
    description: "--prune: also keep one restorable backup (verified first) of each of the last N days",
  });
  keepWeekly = Option.String("--keep-weekly", { description: "--prune: … of each of the last N ISO weeks" });
  keepMonthly = Option.String("--keep-monthly", { description: "--prune: … of each of the last N months" });
  failedGraceHours = Option.String("--failed-grace-hours", {
    description:
      "--prune: keep failed runs and failed verifications this long (default: the plan's, else 72)",
  });
  plans = Option.String("--plans", {
    description: "--prune: a directory (or file) of plans whose retention applies to their targets",
  });

  /** The target name (`--target`); each engine declares the flag with its own default. */
  abstract readonly target: string | undefined;

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
      const action = this.action();
      this.checkFlags(action);
      return await this.dispatch(action);
    } finally {
      this.progress.stop();
    }
  }

  /**
   * Before any I/O: every flag given must be one the action honours (action-flags.ts), and every name that becomes
   * part of an object key must be one safe segment, so `--id ../postgresql/ID` cannot reach another engine's backup.
   */
  private checkFlags(action: Action): void {
    const given = [...tableFlags(this.engine)].filter((flag) => {
      if (flag === "-o") return this.output !== "table";
      const value: unknown = (this as unknown as Record<string, unknown>)[propertyOf(flag)];
      return value !== undefined && value !== false;
    });
    const refused = refusedFlag(this.engine, action, given);
    if (refused) throw new UsageError(refused);
    const segments: Array<[string, string | undefined]> = [
      ["--id", this.id === "latest" && action === "verify" ? undefined : this.id],
      ["--cluster", this.cluster],
      ["--target", this.target],
    ];
    for (const [flag, value] of segments) {
      if (value !== undefined && !isSafeSegment(value))
        throw new UsageError(`${flag} ${JSON.stringify(value)}: ${SAFE_SEGMENT_RULE}`);
    }
    if (action === "download" && this.to !== undefined) checkDestination(this.to, "--to");
  }

  private dispatch(action: Action): Promise<number | void> {
    // The flag table lets --in-cluster through with --create and --restore only.
    if (this.inCluster) return this.runInCluster(action as "create" | "restore");
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
      case "prune":
        return this.runPrune();
      case "check":
        return this.runCheck();
      case "verify":
        return this.runVerify();
      case "recover":
        return this.runRecover();
    }
  }

  /** An engine-specific repair of what a killed run left on the server (`redis --recover`). */
  protected runRecover(): Promise<number | void> {
    return Promise.reject(new UsageError(`--recover applies to capsule redis only`));
  }

  protected abstract runCreate(): Promise<number | void>;
  protected abstract runRestore(): Promise<number | void>;

  /**
   * For `--in-cluster --restore`: the engine's restore flags as `capsule run` takes them. Flags that name a
   * connection are refused: an in-cluster run uses the target's own, from its CronJob.
   */
  protected inClusterRestoreFlags(): string[] {
    return [];
  }

  /** Asks before a destructive action (or proceeds with `--yes`; refuses without a terminal). */
  protected confirmAction(question: string): Promise<void> {
    return confirm(question, { yes: this.yes, stdin: this.context.stdin, stderr: this.context.stderr });
  }

  private async runInCluster(action: "create" | "restore"): Promise<number> {
    const work = action === "create" ? [] : ["--restore", this.requireId(), ...this.inClusterRestoreFlags()];
    const { runInCluster } = await import("../runtime/in-cluster.js");
    const outcome = await runInCluster({
      engine: this.engine,
      cluster: this.cluster ?? this.env["CAPSULE_CLUSTER"],
      target: this.target,
      work,
      env: this.env,
      logLine: (line) => this.context.stderr.write(`${line}\n`),
      note: (line) => this.note(`${line}\n`),
      ...(action === "restore" && {
        beforeCreate: (where: string) => this.confirmAction(`Restore ${this.id ?? ""} into ${where}?`),
      }),
    });
    if (outcome.result !== undefined) this.print(outcome.result);
    return outcome.exitCode;
  }

  /** Set when the bucket was found through a CnvrgApp: its id is the cluster. */
  private discoveredCluster: string | undefined;

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
        this.engine,
        this.cluster ?? this.env["CAPSULE_CLUSTER"],
        this.env,
        options,
        s3OverridesOf(this),
      );
      this.discoveredCluster = found.cluster;
      return found.store;
    }
    return openBackupStore(
      {
        bucket: this.bucket,
        endpoint: this.endpoint,
        region: this.region,
        sse: this.sse,
        sseKmsKeyId: this.sseKmsKeyId,
      },
      this.env,
      options,
    );
  }

  protected clusterId(): string {
    return this.discoveredCluster ?? clusterFrom(this.cluster, this.env);
  }

  protected requireId(): string {
    if (!this.id) throw new UsageError(`--${this.action()} needs --id ID`);
    return this.id;
  }

  protected async entry(store: BackupStore) {
    return store.get({ cluster: this.clusterId(), engine: this.engine, backupId: this.requireId() });
  }

  private action(): Action {
    // Not every engine has every action (only redis declares --recover).
    const mine = ACTIONS.filter((a) => a in this);
    const chosen = mine.filter((a) => (this as unknown as Record<string, unknown>)[a] === true);
    if (chosen.length !== 1) {
      throw new UsageError(`choose exactly one of ${mine.map((a) => `--${a}`).join(", ")}`);
    }
    return chosen[0]!;
  }

  private async runList(): Promise<void> {
    const store = await this.store();
    const entries = await store.list({ cluster: this.clusterId(), engine: this.engine });
    if (this.output === "table") this.print(entries.length ? backupsTable(entries) : "no backups");
    else this.print(render(this.output, entries.map(entryDocument)));
  }

  private async runDescribe(): Promise<void> {
    const entry = await this.entry(await this.store());
    this.print(render(this.output === "table" ? "yaml" : this.output, entryDocument(entry)));
  }

  private async runDownload(): Promise<void> {
    if (!this.to) throw new UsageError("--download needs --to FILE");
    await this.runDownloadTo(this.to);
  }

  /** Downloads the stored artifact as it is; engines override to hand out what their own tools read. */
  protected async runDownloadTo(file: string): Promise<void> {
    const store = await this.store();
    const bytes = await downloadArtifact(store, await this.entry(store), file, {
      force: this.force,
      flag: "--to",
    });
    this.note(`downloaded ${formatBytes(bytes)} to ${file} (sha256 verified)\n`);
  }

  private async runDelete(): Promise<void> {
    const store = await this.store();
    const entry = await this.entry(store);
    await this.confirmAction(
      `Delete backup ${entry.ref.backupId} (${entry.state}) of cluster ${entry.ref.cluster}?`,
    );
    await store.delete(entry.ref);
    this.note(`deleted ${entry.ref.backupId}\n`);
  }

  /**
   * Retention for each target: every policy is resolved before anything is deleted (a target without one refuses
   * the whole prune), then per target the decisions are shown, confirmed and carried out.
   */
  private async runPrune(): Promise<void> {
    const flags = this.retentionFlags();
    const store = await this.store();
    const cluster = this.clusterId();
    const targets = this.target
      ? [this.target]
      : [
          ...new Set(
            (await store.list({ cluster, engine: this.engine })).flatMap((e) =>
              e.statefile ? [e.statefile.target] : [],
            ),
          ),
        ].sort();
    const { policies, searched } = await this.foundPolicies(cluster);
    const applied = targets.map((target) =>
      applyFlags(target, policies.get(target), flags, { cluster, engine: this.engine, searched }),
    );
    const findings = await checkIntegrity(store, cluster, this.engine);
    const results = [];
    for (const { target, policy, source } of applied) {
      const scope = { cluster, engine: this.engine, target };
      const plan = planRetention(await store.list(scope), policy, store.now(), findings);
      let spared: string[] = [];
      if (!this.dryRun && plan.delete.length > 0) {
        await this.confirmAction(`Delete ${plan.delete.length} backup(s) of ${cluster}/${target}?`);
        ({ spared } = await deletePlanned(store, scope, policy, plan));
        for (const id of spared)
          this.note(`kept ${id}: the store changed since the plan, it is no longer let go\n`);
      }
      results.push({ target, policy, source, ...plan, spared });
    }
    if (this.output !== "table") {
      this.print(render(this.output, { dryRun: this.dryRun, targets: results }));
      return;
    }
    const verb = this.dryRun ? "would delete" : "deleted";
    const state = (d: RetentionDecision) =>
      d.verification && d.verification !== "unverified" ? `${d.state} (${d.verification})` : d.state;
    const rows = results.flatMap((p) => [
      ...p.delete.map((d) => ({
        backupId: d.backupId,
        target: p.target,
        state: state(d),
        decision: p.spared.includes(d.backupId) ? "keep" : verb,
        reason: p.spared.includes(d.backupId) ? "changed since the plan" : d.reason,
      })),
      ...p.keep.map((d) => ({
        backupId: d.backupId,
        target: p.target,
        state: state(d),
        decision: "keep",
        reason: d.reason,
      })),
    ]);
    const header = results.map((p) => `${p.target}: ${describePolicy(p.policy)} (from ${p.source})`);
    this.print([...header, rows.length ? decisionsTable(rows) : "no backups"].join("\n"));
  }

  /** The plan's retention per target, from `--plans` or else the cluster the bucket was found through. */
  private async foundPolicies(
    cluster: string,
  ): Promise<{ policies: Map<string, FoundPolicy>; searched: string[] }> {
    if (this.plans !== undefined)
      return {
        policies: await policiesFromPlans(this.plans, cluster, this.engine),
        searched: [`--plans ${this.plans}`],
      };
    if (this.discoveredCluster !== undefined)
      return {
        policies: await policiesFromCluster(cluster, this.engine, this.env),
        searched: ["the cluster's CronJobs"],
      };
    return { policies: new Map(), searched: [] };
  }

  /** The engine's restore drill into a scratch target; it must leave nothing behind, also when it fails. */
  protected abstract drill(store: BackupStore, entry: BackupEntry, signal: AbortSignal): Promise<DrillResult>;

  private async runVerify(): Promise<void> {
    const store = await this.store();
    const id = this.requireId();
    const entry =
      id === "latest"
        ? (
            await store.list({
              cluster: this.clusterId(),
              engine: this.engine,
              ...(this.target ? { target: this.target } : {}),
            })
          ).find((e) => e.state === "succeeded")
        : await this.entry(store);
    if (!entry)
      throw new CapsuleError(
        ErrorCode.NotFound,
        `no succeeded backup to verify for cluster ${this.clusterId()}`,
      );
    if (entry.state !== "succeeded") {
      throw new CapsuleError(
        ErrorCode.NotRestorable,
        `${entry.ref.backupId} is ${entry.state}: only succeeded backups are verified`,
      );
    }
    const verification = await verifyBackup(store, entry, (signal) => this.drill(store, entry, signal), {
      notice: (line) => this.note(`${line}\n`),
    });
    this.note(`verified ${entry.ref.backupId}: ${verification.details} (${verification.method})\n`);
    if (this.output !== "table")
      this.print(render(this.output, { backupId: entry.ref.backupId, verification }));
    else this.print(entry.ref.backupId);
  }

  private async runCheck(): Promise<number> {
    const store = await this.store();
    const cluster = this.clusterId();
    const findings = await checkIntegrity(store, cluster, this.engine);
    const leftovers = await this.checkLeftovers();
    const orphans = findings.filter((f) => f.kind === "orphan");
    if (orphans.length > 0 && this.yes) {
      for (const o of orphans) await store.deleteOrphan(o.key);
      this.note(`deleted ${orphans.length} orphaned object(s)\n`);
    } else if (orphans.length > 0) {
      this.note(`${orphans.length} orphaned object(s); --check --yes deletes them\n`);
    }
    if (this.output === "table") this.print(findings.length ? findingsTable(findings) : "no damage found");
    else this.print(render(this.output, findings));
    const unresolved = this.yes ? findings.filter((f) => f.kind !== "orphan") : findings;
    return unresolved.length + leftovers > 0 ? 1 : 0;
  }

  /**
   * `--check` beyond the bucket: what a killed restore or drill left on a server or this machine, named on stderr
   * (removed with `--yes`). Resolves with how many are left unresolved.
   */
  protected checkLeftovers(): Promise<number> {
    return Promise.resolve(0);
  }

  private retentionFlags(): RetentionFlags {
    const count = (flag: string, value: string | undefined, min: number): number | undefined => {
      if (value === undefined) return undefined;
      const n = Number(value);
      if (!Number.isInteger(n) || n < min)
        throw new UsageError(`${flag} must be an integer >= ${min} (got ${JSON.stringify(value)})`);
      return n;
    };
    const flags: RetentionFlags = {
      keepLast: count("--keep-last", this.keepLast, 1),
      keepDaily: count("--keep-daily", this.keepDaily, 0),
      keepWeekly: count("--keep-weekly", this.keepWeekly, 0),
      keepMonthly: count("--keep-monthly", this.keepMonthly, 0),
      failedGraceHours: count("--failed-grace-hours", this.failedGraceHours, 0),
    };
    return Object.fromEntries(Object.entries(flags).filter(([, n]) => n !== undefined));
  }

  /** Takes one backup through the run protocol and prints its id (or its statefile with `-o json|yaml`). */
  protected async createBackup(
    target: string,
    source: Statefile["source"],
    engine: EngineBackup,
  ): Promise<Statefile> {
    if (!isSafeSegment(target)) {
      // Only a defaulted name reaches here (checkFlags vets --target): say where it came from and what to do.
      throw new UsageError(
        `the backup needs a target name and ${JSON.stringify(target)} cannot be one (${SAFE_SEGMENT_RULE}): pass --target NAME`,
      );
    }
    const statefile = await takeBackup(
      await this.store(),
      {
        cluster: this.clusterId(),
        target,
        engine: this.engine,
        trigger: { type: "manual" },
        source: redactSource(source),
      },
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
    // Asking to confirm a restore that cannot decrypt would waste the operator's yes.
    await store.identitiesFor(entry);
    await this.confirmAction(question(entry));
    return entry;
  }

  /**
   * Runs a restore and appends its outcome — succeeded, failed or interrupted — to the backup's statefile. SIGINT
   * and SIGTERM abort `work`'s signal instead of killing capsule, so the engine can leave the target whole first.
   */
  protected recordingRestore<T>(
    store: BackupStore,
    entry: BackupEntry,
    to: string,
    work: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    return recordedRestore(store, entry, { to }, work, { notice: (line) => this.note(`${line}\n`) });
  }

  /** For engines whose backup path is not built yet: one honest line, never a fake success. */
  protected notBuilt(what: string): CapsuleError {
    return new CapsuleError(
      ErrorCode.NotImplemented,
      `${what} is not implemented yet in this version of capsule`,
    );
  }
}
