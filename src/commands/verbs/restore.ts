import { Option } from "clipanion";
import { recoveryTargetOf } from "../../domain/recovery-target.js";
import { restoreToPointInTime } from "../../runtime/point-in-time.js";
import { restoreBackup } from "../../runtime/restore.js";
import { flagOf } from "../base-command.js";
import type { Report } from "../render.js";
import { runInCluster } from "./in-cluster.js";
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

  protected async perform(): Promise<Report> {
    if (this.inCluster) return this.restoreInCluster();
    if (this.fields["physical"] === true) return this.restorePointInTime();
    this.engine.checkRestore?.(this.fields);
    const conn = this.connect();
    const store = await this.store();
    const result = await restoreBackup(
      store,
      await this.entry(store),
      (statefile) => this.engine.planRestore(conn, statefile, this.fields, this.env),
      {
        force: this.force,
        confirm: this.confirmAction,
        onPhase: this.phase,
        onNotice: (line) => this.note(line),
      },
    );
    for (const line of result.lines) this.note(line);
    return { document: result.document };
  }

  /** `--restore --physical`: a base backup plus WAL into a new data directory; nothing existing is touched. */
  private async restorePointInTime(): Promise<Report> {
    this.engine.checkRestore?.(this.fields);
    const store = await this.store();
    const result = await restoreToPointInTime(store, {
      cluster: this.clusterId(),
      engine: this.engine,
      ...(this.target !== undefined && { target: this.target }),
      ...(this.id !== undefined && { id: this.id }),
      recoveryTarget: recoveryTargetOf(this.fields),
      fields: this.fields,
      onPhase: this.phase,
      onNotice: (line) => this.note(line),
    });
    for (const line of result.lines) this.note(line);
    return { document: result.document };
  }

  /** The engine's in-cluster restore flags go to the Job's `capsule run --restore` as they were given. */
  private restoreInCluster(): Promise<Report> {
    const id = this.requireId();
    this.engine.checkRestore?.(this.fields);
    const forwarded = this.engine.flags
      .filter((f) => f.modes.includes("restore --in-cluster"))
      .flatMap((f) => {
        const value = this.fields[f.field];
        if (f.kind === "boolean") return value === true ? [flagOf(f.field)] : [];
        return typeof value === "string" ? [flagOf(f.field), value] : [];
      });
    return runInCluster(this, {
      cluster: this.cluster,
      target: this.target,
      work: ["--restore", id, ...forwarded],
      note: (line) => this.note(line),
      confirm: (where) => this.confirmAction(`Restore ${id} into ${where}?`),
    });
  }
}
