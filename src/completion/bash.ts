/**
 * The bash completion script: one function that looks at the command (the first word after `capsule`) and the
 * word before the cursor. Flag values with a fixed set (`-o table|json|yaml`) complete to that set, other values to
 * file names. Install: `capsule completion bash > /usr/local/etc/bash_completion.d/capsule`.
 */
import type { CompletionCommand, CompletionFlag, CompletionModel } from "./model.js";

export function bashScript(model: CompletionModel, header: string): string {
  const fn = `_${model.binary.replace(/[^A-Za-z0-9_]/g, "_")}_complete`;
  const words = (flags: readonly CompletionFlag[]) => flags.flatMap((f) => f.names).join(" ");
  const lines = [
    `# ${header}`,
    `${fn}() {`,
    `  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"`,
    `  COMPREPLY=()`,
    `  if [[ $COMP_CWORD -eq 1 ]]; then`,
    `    COMPREPLY=($(compgen -W "${[...model.commands.map((c) => c.name), words(model.topFlags)].join(" ")}" -- "$cur"))`,
    `    return 0`,
    `  fi`,
    `  case "\${COMP_WORDS[1]}" in`,
    ...model.commands.flatMap((command) => commandCase(command)),
    `  esac`,
    `}`,
    `complete -F ${fn} ${model.binary}`,
  ];
  return `${lines.join("\n")}\n`;
}

function commandCase(command: CompletionCommand): string[] {
  const valueFlags = command.flags.filter((f) => f.takesValue);
  const flagWords = command.flags.flatMap((f) => f.names).join(" ");
  const lines = [`    ${command.name})`];
  const freeText = valueFlags.filter((f) => !f.choices).flatMap((f) => f.names);
  if (valueFlags.length > 0) {
    lines.push(`      case "$prev" in`);
    for (const flag of valueFlags)
      if (flag.choices)
        lines.push(
          `        ${flag.names.join("|")}) COMPREPLY=($(compgen -W "${flag.choices.join(" ")}" -- "$cur")); return 0 ;;`,
        );
    // A value without a fixed set: a file name is the likeliest (--to, --plans, --ca-cert…), never a flag.
    if (freeText.length > 0)
      lines.push(`        ${freeText.join("|")}) COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;`);
    lines.push(`      esac`);
  }
  if (command.positionals)
    lines.push(
      `      if [[ "$cur" != -* ]]; then COMPREPLY=($(compgen -W "${command.positionals.join(" ")}" -- "$cur")); return 0; fi`,
    );
  lines.push(`      COMPREPLY=($(compgen -W "${flagWords}" -- "$cur"))`, `      ;;`);
  return lines;
}
