import { Option, UsageError } from "clipanion";
import { recoveryTargetOf } from "../../domain/recovery-target.js";
import { restoreToPointInTime } from "../../runtime/point-in-time.js";
import { restoreBackup } from "../../runtime/restore.js";
import { flagOf } from "../base-command.js";
import type { Report } from "../render.js";
import { flag, StoreVerb } from "./verb-command.js";

/** `capsule <engine> --restore --id ID`: the engine's restore, confirmed and recorded in the backup's statefile. */
export class RestoreVerb extends StoreVerb {
  static override summary = "Restore a backup";
  readonly verb = "restore";
  restore = this.verbFlag();
  override id = flag.id();
  override yes = flag.yes();
  force = flag.force();
  override sse = flag.sse();
  override sseKmsKeyId = flag.sseKmsKeyId();
  inCluster = flag.inCluster();
  override target = Option.String("--target", { description: "With --in-cluster: the target to restore" });
  pvcSize = Option.String("--pvc-size", {
    description:
      "With --physical --in-cluster: size of the new PVC the data directory is restored into (80Gi)",
  });
  pvcName = Option.String("--pvc-name", {
    description:
      "With --physical --in-cluster: name of the new PVC (must not exist); default derived from the run",
  });
  storageClass = Option.String("--storage-class", {
    description: "With --physical --in-cluster: StorageClass of the new PVC; default the cluster's",
  });

  protected async perform(): Promise<Report> {
    if (this.inCluster && this.fields["physical"] === true) return this.restorePhysicalInCluster();
    const pvcFlag = [
      ["--pvc-size", this.pvcSize],
      ["--pvc-name", this.pvcName],
      ["--storage-class", this.storageClass],
    ].find(([, value]) => value !== undefined)?.[0];
    if (pvcFlag) throw new UsageError(`${pvcFlag} applies to --restore only with --physical --in-cluster`);
    if (this.inCluster) return this.restoreInCluster();
    this.engine.checkRestore?.(this.fields);
    // `--physical`: a base backup plus WAL into a new data directory; nothing existing is touched.
    const physical = this.fields["physical"] === true;
    const conn = physical ? undefined : this.connect();
    const store = await this.store();
    const progress = { onPhase: this.phase, onNotice: (line: string) => this.note(line) };
    const result = physical
      ? await restoreToPointInTime(store, {
          cluster: this.clusterId(),
          engine: this.engine,
          ...(this.target !== undefined && { target: this.target }),
          ...(this.id !== undefined && { id: this.id }),
          recoveryTarget: recoveryTargetOf(this.fields),
          fields: this.fields,
          ...progress,
        })
      : await restoreBackup(
          store,
          await this.entry(store),
          (statefile) => this.engine.planRestore(conn, statefile, this.fields, this.env),
          { force: this.force, confirm: this.confirmAction, ...progress },
        );
    for (const line of result.lines) this.note(line);
    return { document: result.document };
  }

  /** The engine's in-cluster restore flags, as they were given, but those in `except` (fields). */
  private forwardedRestoreFlags(except: readonly string[] = []): string[] {
    return this.engine.flags
      .filter((f) => f.modes.includes("restore --in-cluster") && !except.includes(f.field))
      .flatMap((f) => {
        const value = this.fields[f.field];
        if (f.kind === "boolean") return value === true ? [flagOf(f.field)] : [];
        return typeof value === "string" ? [flagOf(f.field), value] : [];
      });
  }

  /** The engine's in-cluster restore flags go to the Job's `capsule run --restore` as they were given. */
  private restoreInCluster(): Promise<Report> {
    const id = this.requireId();
    this.engine.checkRestore?.(this.fields);
    return this.runInCluster(["--restore", id, ...this.forwardedRestoreFlags()], (where) =>
      this.confirmAction(`Restore ${id} into ${where}?`),
    );
  }

  /**
   * A physical restore into a new PVC (runtime/in-cluster.ts): the Job writes the data directory, capsule says how
   * to point the database at it. `--id` is optional (the newest base backup before the target point).
   */
  private async restorePhysicalInCluster(): Promise<Report> {
    if (this.fields["toDataDir"] !== undefined)
      throw new UsageError("--to-data-dir does not apply with --in-cluster: the Job restores into a new PVC");
    this.engine.checkRestore?.(this.fields);
    const { restorePhysicalInCluster } = await import("../../runtime/in-cluster.js");
    const outcome = await restorePhysicalInCluster({
      ...this.inClusterRun(),
      id: this.id,
      forwarded: this.forwardedRestoreFlags(["physical", "toDataDir"]),
      pvcSize: this.pvcSize,
      pvcName: this.pvcName,
      storageClass: this.storageClass,
      beforeCreate: (where) => this.confirmAction(`Restore into ${where}?`),
    });
    const document = { pvc: outcome.pvc, job: outcome.job, dataDir: "pgdata" };
    return { exitCode: outcome.exitCode, table: outcome.pvc, document };
  }
}
