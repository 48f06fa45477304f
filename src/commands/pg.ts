import { Command } from "clipanion";
import { EngineCommand } from "./engine-command.js";

export class PgCommand extends EngineCommand {
  static override paths = [["pg"]];
  static override usage = Command.Usage({ description: "Back up, list and restore PostgreSQL backups" });
  readonly engine = "postgresql" as const;

  protected runCreate(): Promise<void> {
    return Promise.reject(this.notBuilt("pg --create"));
  }
  protected runRestore(): Promise<void> {
    return Promise.reject(this.notBuilt("pg --restore"));
  }
}
