import { pointInTimeState } from "../../runtime/point-in-time.js";
import { entryDocument, render, type Report } from "../render.js";
import { flag, StoreVerb } from "./verb-command.js";

/** `capsule <engine> --describe --id ID`: one backup's statefile (YAML unless `-o json`). */
export class DescribeVerb extends StoreVerb {
  static override summary = "Show one backup's statefile";
  readonly verb = "describe";
  describe = this.verbFlag();
  override id = flag.id();

  protected async perform(): Promise<Report> {
    const store = await this.store();
    const entry = await this.entry(store);
    let document = entryDocument(entry);
    const statefile = entry.statefile;
    if (statefile?.kind === "physical") {
      // What a point-in-time restore of this backup's target can reach now, beside what the statefile records.
      const state = await pointInTimeState(store, { ...this.scope(), target: statefile.target });
      document = { ...(document as object), recoveryWindow: state.window ?? null };
    }
    return { document, table: render("yaml", document) };
  }
}
