import type { Report } from "../render.js";
import { backupsTable, entryDocument } from "../render.js";
import { StoreVerb } from "./verb-command.js";

/** `capsule <engine> --list`: the cluster's backups of the engine, newest first. */
export class ListVerb extends StoreVerb {
  static override summary = "List backups, newest first";
  readonly verb = "list";
  list = this.verbFlag();

  protected async perform(): Promise<Report> {
    const store = await this.store();
    const entries = await store.list(this.scope());
    return {
      document: entries.map(entryDocument),
      table: () => (entries.length ? backupsTable(entries) : "no backups"),
    };
  }
}
