/**
 * What a shell needs to complete `capsule …`, read from clipanion's command definitions so that completion never
 * drifts from the commands: every command, its flags (engine verbs such as `--list` are flags too), which flags take
 * a value, and the values a flag or positional accepts when there is a fixed set. An engine's word (`pg`) has one
 * definition per verb: its flags are their union, its description the engine's (engines/registry.ts).
 */
import type { Definition } from "clipanion";
import { allEngines } from "../engines/registry.js";

export const SHELLS = ["bash", "zsh", "fish"] as const;
export type Shell = (typeof SHELLS)[number];

export function isShell(name: string | undefined): name is Shell {
  return (SHELLS as readonly (string | undefined)[]).includes(name);
}

export interface CompletionFlag {
  /** Every spelling, short first: ["-o", "--output"]. */
  readonly names: readonly string[];
  readonly takesValue: boolean;
  /** The only values the flag accepts; undefined means free text (shells offer file names). */
  readonly choices?: readonly string[];
  readonly description: string;
}

export interface CompletionCommand {
  readonly name: string;
  readonly description: string;
  readonly flags: readonly CompletionFlag[];
  /** Values for the command's positional argument, if it has a fixed set. */
  readonly positionals?: readonly string[];
}

export interface CompletionModel {
  readonly binary: string;
  readonly commands: readonly CompletionCommand[];
  /** Flags accepted in the first position, before a command. */
  readonly topFlags: readonly CompletionFlag[];
}

export interface ValueChoices {
  /** Per flag name (any spelling), the values it accepts. */
  readonly flags: Readonly<Record<string, readonly string[]>>;
  /** Per command name, the values of its positional argument. */
  readonly positionals: Readonly<Record<string, readonly string[]>>;
}

const HELP: CompletionFlag = {
  names: ["-h", "--help"],
  takesValue: false,
  description: "Show the command's help",
};
const VERSION: CompletionFlag = { names: ["--version"], takesValue: false, description: "Print the version" };

// Names go into generated shell code unquoted: anything outside these characters would be an injection.
const SAFE_NAME = /^-{0,2}[a-z0-9][a-z0-9-]*$/;
const SAFE_VALUE = /^[A-Za-z0-9._-]+$/;

export function completionModel(
  binary: string,
  definitions: readonly Definition[],
  choices: ValueChoices,
): CompletionModel {
  const byName = new Map<string, CompletionCommand>();
  for (const command of definitions.map((definition) => {
    const words = definition.path.split(" ").slice(1);
    const name = words[0];
    // Every capsule command is one word; a nested one would need the generators to walk paths.
    if (words.length !== 1 || name === undefined || !SAFE_NAME.test(name))
      throw new Error(
        `completion: cannot complete the command "${definition.path}" (one plain word expected)`,
      );
    const positionals = choices.positionals[name];
    if (positionals?.some((value) => !SAFE_VALUE.test(value)))
      throw new Error(`completion: cannot complete the arguments of "${definition.path}"`);
    const flags = definition.options.map((option) =>
      parseFlag(option.definition, option.description ?? "", choices),
    );
    const engine = allEngines().find((e) => e.command === name);
    return {
      name,
      description: oneLine(engine?.usage.description ?? definition.description ?? ""),
      flags: [...flags, HELP],
      ...(positionals ? { positionals } : {}),
    };
  })) {
    const known = byName.get(command.name);
    byName.set(command.name, known ? { ...known, flags: unionOf(known.flags, command.flags) } : command);
  }
  return {
    binary,
    commands: [...byName.values()].sort((a, b) => a.name.localeCompare(b.name)),
    topFlags: [HELP, VERSION],
  };
}

/** The flags of both, each once (by its longest spelling), in the order first seen. */
function unionOf(a: readonly CompletionFlag[], b: readonly CompletionFlag[]): CompletionFlag[] {
  const seen = new Map<string, CompletionFlag>();
  for (const flag of [...a, ...b]) {
    const key = flag.names.at(-1)!;
    if (!seen.has(key)) seen.set(key, flag);
  }
  return [...seen.values()];
}

/** `-o,--output #0` → names ["-o", "--output"], takes a value (clipanion writes `#0` for a flag's argument). */
function parseFlag(definition: string, description: string, choices: ValueChoices): CompletionFlag {
  const [spellings = "", ...rest] = definition.split(" ");
  const names = spellings.split(",");
  for (const name of names)
    if (!SAFE_NAME.test(name) || !name.startsWith("-"))
      throw new Error(`completion: cannot complete the flag "${definition}"`);
  const takesValue = rest.some((part) => /^#\d+$/.test(part));
  const fixed = names.map((name) => choices.flags[name]).find((values) => values !== undefined);
  if (fixed?.some((value) => !SAFE_VALUE.test(value)))
    throw new Error(`completion: cannot complete the values of "${definition}"`);
  return {
    names,
    takesValue,
    description: oneLine(description),
    ...(takesValue && fixed ? { choices: fixed } : {}),
  };
}

/** Shells show descriptions on one line; clipanion's end with a newline. */
function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}
