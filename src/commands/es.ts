import { Command } from "clipanion";
import { EngineCommand } from "./engine-command.js";

export class EsCommand extends EngineCommand {
  static override paths = [["es"]];
  static override usage = Command.Usage({ description: "Back up, list and restore Elasticsearch backups" });
  readonly engine = "elasticsearch" as const;

  protected runCreate(): Promise<void> {
    return Promise.reject(this.notBuilt("es --create"));
  }
  protected runRestore(): Promise<void> {
    return Promise.reject(this.notBuilt("es --restore"));
  }
}
