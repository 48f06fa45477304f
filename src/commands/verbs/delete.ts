import type { Report } from "../render.js";
import { flag, StoreVerb } from "./verb-command.js";

/** `capsule <engine> --delete --id ID`: a backup's artifact and statefile, once confirmed. */
export class DeleteVerb extends StoreVerb {
  static override summary = "Delete a backup (artifact and statefile)";
  readonly verb = "delete";
  delete = this.verbFlag();
  override id = flag.id();
  override yes = flag.yes();
  override sse = flag.sse();
  override sseKmsKeyId = flag.sseKmsKeyId();
  // Nothing goes to stdout: -o is not a flag of --delete.
  override output = "table" as const;

  protected async perform(): Promise<Report> {
    const store = await this.store();
    const entry = await this.entry(store);
    await this.confirmAction(
      `Delete backup ${entry.ref.backupId} (${entry.state}) of cluster ${entry.ref.cluster}?`,
    );
    await store.delete(entry.ref);
    this.note(`deleted ${entry.ref.backupId}`);
    return {};
  }
}
