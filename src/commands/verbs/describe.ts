import { entryDocument, render, type Report } from "../render.js";
import { flag, StoreVerb } from "./verb-command.js";

/** `capsule <engine> --describe --id ID`: one backup's statefile (YAML unless `-o json`). */
export class DescribeVerb extends StoreVerb {
  static override summary = "Show one backup's statefile";
  readonly verb = "describe";
  describe = this.verbFlag();
  override id = flag.id();

  protected async perform(): Promise<Report> {
    const document = entryDocument(await this.entry(await this.store()));
    return { document, table: render("yaml", document) };
  }
}
