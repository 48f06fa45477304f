/**
 * The zsh completion script (`_arguments` per command, `_describe` for the commands). Works both ways zsh loads
 * completions: saved as `_capsule` in a directory on `$fpath`, or sourced (`source <(capsule completion zsh)`).
 */
import type { CompletionCommand, CompletionFlag, CompletionModel } from "./model.js";

export function zshScript(model: CompletionModel, header: string): string {
  const fn = `_${model.binary.replace(/[^A-Za-z0-9_]/g, "_")}`;
  const lines = [
    `#compdef ${model.binary}`,
    `# ${header}`,
    `${fn}() {`,
    `  local -a commands`,
    `  commands=(`,
    ...model.commands.map((c) => `    ${quote(`${c.name}:${c.description}`)}`),
    `  )`,
    `  if (( CURRENT == 2 )); then`,
    `    _describe -t commands ${quote(`${model.binary} command`)} commands`,
    `    _arguments ${model.topFlags.map(spec).join(" ")}`,
    `    return`,
    `  fi`,
    // What follows the command is completed as if the command were the whole line.
    `  local command=$words[2]`,
    `  shift words`,
    `  (( CURRENT-- ))`,
    `  case $command in`,
    ...model.commands.flatMap((command) => commandCase(command)),
    `  esac`,
    `}`,
    `if [[ $zsh_eval_context[-1] == loadautofunc ]]; then`,
    `  ${fn} "$@"`,
    `else`,
    `  compdef ${fn} ${model.binary}`,
    `fi`,
  ];
  return `${lines.join("\n")}\n`;
}

function commandCase(command: CompletionCommand): string[] {
  const specs = command.flags.map(spec);
  if (command.positionals) specs.push(quote(`1:${command.name}:(${command.positionals.join(" ")})`));
  return [
    `    ${command.name})`,
    `      _arguments -s \\`,
    ...specs.map((s) => `        ${s} \\`),
    `      ;;`,
  ].map((line, i, all) => (i === all.length - 2 ? line.replace(/ \\$/, "") : line));
}

/** One `_arguments` spec: `(-o --output)'{-o,--output}'[Output format]:value:(table json yaml)`. */
function spec(flag: CompletionFlag): string {
  // Inside […] only "]" (and the backslash that quotes it) is special to _arguments.
  const description = `[${flag.description.replace(/([\\\]])/g, "\\$1")}]`;
  const value = !flag.takesValue ? "" : flag.choices ? `:value:(${flag.choices.join(" ")})` : ":value:_files";
  if (flag.names.length === 1) return quote(`${flag.names[0]}${description}${value}`);
  // Spellings of one flag exclude each other; zsh's brace expansion writes the spec once per spelling.
  return `${quote(`(${flag.names.join(" ")})`)}{${flag.names.join(",")}}${quote(`${description}${value}`)}`;
}

/** A single-quoted zsh word. */
function quote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}
