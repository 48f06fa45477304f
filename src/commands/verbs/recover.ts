import type { Report } from "../render.js";
import { VerbCommand } from "./verb-command.js";

/** `capsule <engine> --recover`: puts back a server a killed restore left in between (only engines that can). */
export class RecoverVerb extends VerbCommand {
  static override summary =
    "Put back a server that a killed restore left a read-only replica of capsule (its settings as before)";
  readonly verb = "recover";
  recover = this.verbFlag();
  // It talks to the server only and prints nothing to stdout.
  override output = "table" as const;

  protected async perform(): Promise<Report> {
    const conn = this.connect();
    this.note(await this.engine.recover!(conn, { onPhase: this.phase }));
    return {};
  }
}
