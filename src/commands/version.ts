import { Command } from "clipanion";
import { buildInfo } from "../version.js";
import { BaseCommand } from "./base-command.js";
import { render } from "./render.js";

export class VersionCommand extends BaseCommand {
  static override paths = [["version"]];
  static override usage = Command.Usage({ description: "Print capsule's version and build" });

  async run(): Promise<void> {
    if (this.output === "table")
      this.print(
        `capsule ${buildInfo.version} (commit ${buildInfo.commit}, built ${buildInfo.date}, node ${buildInfo.node})`,
      );
    else this.print(render(this.output, buildInfo));
    await Promise.resolve();
  }
}
