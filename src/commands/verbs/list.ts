import { describeWindow, pointInTimeWindows } from "../../runtime/point-in-time.js";
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
    // Targets with physical base backups: the times a point-in-time restore can reach (docs/adr/0021).
    const windows = await pointInTimeWindows(store, this.scope(), entries);
    const windowLines = windows.map(
      ({ target, window }) =>
        `point-in-time window of ${target}: ${window ? describeWindow(window) : "no streamed WAL connects to a base backup yet"}`,
    );
    return {
      document: entries.map(entryDocument),
      table: () =>
        entries.length ? [backupsTable(entries).trimEnd(), ...windowLines].join("\n") + "\n" : "no backups",
    };
  }
}
