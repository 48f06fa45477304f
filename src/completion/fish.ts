/**
 * The fish completion script: one `complete` line per command and per flag, conditioned on the command seen.
 * Install: `capsule completion fish > ~/.config/fish/completions/capsule.fish`.
 */
import type { CompletionCommand, CompletionFlag, CompletionModel } from "./model.js";

export function fishScript(model: CompletionModel, header: string): string {
  const c = `complete -c ${model.binary}`;
  const names = model.commands.map((command) => command.name).join(" ");
  const lines = [
    `# ${header}`,
    // No file names unless a flag asks for one.
    `${c} -f`,
    ...model.commands.map(
      (command) =>
        `${c} -n ${quote(`not __fish_seen_subcommand_from ${names}`)} -a ${command.name} -d ${quote(command.description)}`,
    ),
    ...model.topFlags.map(
      (flag) => `${c} -n ${quote(`not __fish_seen_subcommand_from ${names}`)} ${flagSpec(flag)}`,
    ),
    ...model.commands.flatMap((command) => commandLines(c, command)),
  ];
  return `${lines.join("\n")}\n`;
}

function commandLines(c: string, command: CompletionCommand): string[] {
  const when = `-n ${quote(`__fish_seen_subcommand_from ${command.name}`)}`;
  const lines = command.flags.map((flag) => `${c} ${when} ${flagSpec(flag)}`);
  if (command.positionals) lines.push(`${c} ${when} -a ${quote(command.positionals.join(" "))}`);
  return lines;
}

function flagSpec(flag: CompletionFlag): string {
  const parts = flag.names.map((name) =>
    name.startsWith("--") ? `-l ${name.slice(2)}` : `-s ${name.slice(1)}`,
  );
  if (flag.takesValue) parts.push(flag.choices ? `-x -a ${quote(flag.choices.join(" "))}` : "-r -F");
  if (flag.description) parts.push(`-d ${quote(flag.description)}`);
  return parts.join(" ");
}

/** A single-quoted fish word: inside one, only \\ and \' are special. */
function quote(text: string): string {
  return `'${text.replace(/[\\']/g, "\\$&")}'`;
}
