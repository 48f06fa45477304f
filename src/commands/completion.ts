import { Command, Option, UsageError } from "clipanion";
import { completionModel, isShell, SHELLS } from "../completion/model.js";
import { completionScript } from "../completion/script.js";
import { buildInfo } from "../version.js";
import { BaseCommand, OUTPUT_FORMATS } from "./base-command.js";

/** `capsule completion bash|zsh|fish`: a completion script generated from the command definitions. */
export class CompletionCommand extends BaseCommand {
  static override paths = [["completion"]];
  static override usage = Command.Usage({
    description: "Print a shell completion script (bash, zsh or fish)",
    details: `
      Completes the commands, their flags (the engine verbs such as \`--list\` and \`--restore\` too) and the values
      of \`-o\`; other flag values complete to file names. Generated from the commands themselves, so it matches
      this capsule's version.
    `,
    examples: [
      ["bash", "capsule completion bash > /usr/local/etc/bash_completion.d/capsule"],
      ["zsh (a directory on $fpath)", "capsule completion zsh > ~/.zsh/completions/_capsule"],
      ["fish", "capsule completion fish > ~/.config/fish/completions/capsule.fish"],
    ],
  });

  // Checked in run(), not by a validator: clipanion reports parse-time failures as several lines.
  shell = Option.String({ name: "shell", required: false });

  run(): Promise<void> {
    const shell = this.shell;
    if (!isShell(shell))
      throw new UsageError(
        shell === undefined
          ? `name the shell: ${SHELLS.join(", ")}`
          : `unknown shell "${shell}": expected one of ${SHELLS.join(", ")}`,
      );
    // buildCli registers every command for `capsule completion`: the script needs each one's definition.
    const model = completionModel("capsule", this.cli.definitions(), {
      flags: { "--output": OUTPUT_FORMATS },
      positionals: { completion: SHELLS },
    });
    this.print(completionScript(shell, model, buildInfo.version));
    return Promise.resolve();
  }
}
