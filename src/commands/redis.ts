import { Command } from "clipanion";
import { EngineCommand } from "./engine-command.js";

export class RedisCommand extends EngineCommand {
  static override paths = [["redis"]];
  static override usage = Command.Usage({ description: "Back up, list and restore Redis backups" });
  readonly engine = "redis" as const;

  protected runCreate(): Promise<void> {
    return Promise.reject(this.notBuilt("redis --create"));
  }
  protected runRestore(): Promise<void> {
    return Promise.reject(this.notBuilt("redis --restore"));
  }
}
