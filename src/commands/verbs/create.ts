import { Option } from "clipanion";
import { backUp } from "../../runtime/backup.js";
import { formatBytes, type Report } from "../render.js";
import { flag, StoreVerb } from "./verb-command.js";

/** `capsule <engine> --create`: one backup of the server the flags name, or `--in-cluster` as the target's Job. */
export class CreateVerb extends StoreVerb {
  static override summary = "Take a backup now";
  readonly verb = "create";
  create = this.verbFlag();
  override target = Option.String("--target", {
    description: `Target name recorded in the backup (default: ${this.engine.usage.targetDefault})`,
  });
  override encryptTo = Option.Array("--encrypt-to", {
    description:
      "Encrypt the artifact to this age recipient (age1… public key; repeatable). Decrypting reads the identity " +
      "from $CAPSULE_AGE_IDENTITY or the file $CAPSULE_AGE_IDENTITY_FILE, never from a flag",
  });
  override sse = flag.sse();
  override sseKmsKeyId = flag.sseKmsKeyId();
  inCluster = flag.inCluster();

  protected async perform(): Promise<Report> {
    if (this.inCluster) return this.runInCluster([]);
    const conn = this.connect();
    this.engine.checkBackup?.(this.fields);
    const statefile = await backUp(await this.store(), this.engine, conn, {
      cluster: this.clusterId(),
      ...(this.target !== undefined && { target: this.target }),
      trigger: { type: "manual" },
      fields: this.fields,
    });
    const { summary, warnings } = this.engine.describeBackup(statefile);
    this.note(
      `backed up ${this.engine.describe(conn)}: ${formatBytes(statefile.artifact?.sizeBytes ?? 0)}` +
        `${summary ? `, ${summary}` : ""} as ${statefile.backupId}`,
    );
    for (const warning of warnings) this.note(`warning: ${warning}`);
    return { document: statefile, table: statefile.backupId };
  }
}
