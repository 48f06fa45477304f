/**
 * `capsule <engine> --<verb>`: one command class per engine and verb, made from the registry (engines/registry.ts).
 * clipanion picks the class by its required option, the verb flag, so `capsule pg --restore --id X` runs the
 * restore class of PostgreSQL. Each class declares the verb's common flags (verbs/*.ts) and the engine's flags whose
 * modes name the verb (`EngineFlag.modes`); `capsule pg --restore --help` shows just those.
 *
 * Since a class knows only its own flags, which verb was meant and which flags it refuses is decided here on the
 * command line, before clipanion parses it: zero or two verbs is `choose exactly one of …`, and a flag the mode does
 * not take is refused with the line action-flags.ts words, not clipanion's "unsupported option".
 */
import { Command, type CommandClass, type Definition } from "clipanion";
import type { Engine } from "../engines/engine.js";
import { type Action, actionFlags, actionsOf, refusedFlag } from "./action-flags.js";
import { type CapsuleContext, declareEngineFlags, flagOf } from "./base-command.js";
import { CheckVerb } from "./verbs/check.js";
import { CreateVerb } from "./verbs/create.js";
import { DeleteVerb } from "./verbs/delete.js";
import { DescribeVerb } from "./verbs/describe.js";
import { DownloadVerb } from "./verbs/download.js";
import { ListVerb } from "./verbs/list.js";
import { PruneVerb } from "./verbs/prune.js";
import { RecoverVerb } from "./verbs/recover.js";
import { RestoreVerb } from "./verbs/restore.js";
import { StreamWalVerb } from "./verbs/stream-wal.js";
import type { VerbCommand } from "./verbs/verb-command.js";
import { VerifyVerb } from "./verbs/verify.js";

/** A verb's class as the generator extends it: concrete, with the statics every command has. */
type VerbClass = (new () => VerbCommand) & Pick<typeof VerbCommand, "paths" | "usage" | "engine" | "summary">;

const VERBS: Readonly<Record<Action, VerbClass>> = {
  create: CreateVerb,
  list: ListVerb,
  describe: DescribeVerb,
  download: DownloadVerb,
  restore: RestoreVerb,
  delete: DeleteVerb,
  prune: PruneVerb,
  check: CheckVerb,
  verify: VerifyVerb,
  recover: RecoverVerb,
  "stream-wal": StreamWalVerb,
};

/** Every verb class of `engine`, in the order its verbs are named. */
export function engineVerbClasses(engine: Engine): Array<CommandClass<CapsuleContext>> {
  return actionsOf(engine).map((verb) => verbClass(engine, verb));
}

function verbClass(engine: Engine, verb: Action): CommandClass<CapsuleContext> {
  const takes = actionFlags(engine, verb);
  const own = engine.flags.filter((f) => takes.has(flagOf(f.field)));
  // Abstract only to TypeScript, which cannot see that each entry of VERBS implements its verb.
  abstract class Generated extends VERBS[verb] {
    static override paths = [[engine.command]];
    static override engine = engine;
    static override usage = Command.Usage({
      description: VERBS[verb].summary,
      details: engine.usage.details,
      examples: engine.usage.examples.filter(([, line]) => line.includes(` --${verb}`)),
    });

    constructor() {
      super();
      // Declared here, from the engine: clipanion reads a command's options from its instance's properties.
      declareEngineFlags(this, own);
    }
  }
  Object.defineProperty(Generated, "name", { value: `${engine.command}-${verb}` });
  return Generated as unknown as CommandClass<CapsuleContext>;
}

/** clipanion's `--help` spelling: `-h`, `--help`, `-h=1`. */
const HELP = /^(-h|--help)(=\d+)?$/;

/**
 * What is wrong with `capsule <engine> …` before it is parsed, as a usage message; undefined when clipanion may
 * parse it (and `--help`, which clipanion answers). `definitions` are the engine's verb classes', for which flags
 * exist and which take a value.
 */
export function engineArgvProblem(
  engine: Engine,
  args: readonly string[],
  definitions: readonly Definition[],
): string | undefined {
  const takesValue = new Map<string, boolean>();
  for (const option of definitions.flatMap((d) => d.options)) {
    const [names = "", ...rest] = option.definition.split(" ");
    const takes = rest.some((part) => /^#\d+$/.test(part));
    for (const name of names.split(",")) takesValue.set(name, takes);
  }
  const verbs = verbFlags(engine);
  const given: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (HELP.test(arg)) return undefined;
    if (!arg.startsWith("-") || arg === "--")
      return `Extraneous positional argument (${JSON.stringify(arg)}).`;
    const [name = arg, bound] = arg.split(/=(.*)/s);
    if (!takesValue.has(name)) return `Unsupported option name (${JSON.stringify(name)}).`;
    const value = takesValue.get(name) && bound === undefined ? args[++i] : bound;
    const flag = name === "--output" ? "-o" : name;
    // `-o table` is what no `-o` means: it is not refused where nothing is printed.
    if (flag === "-o" && value === "table") continue;
    given.push(flag);
  }
  const chosen = given.filter((flag) => verbs.includes(flag));
  if (chosen.length !== 1) return `choose exactly one of ${verbs.join(", ")}`;
  const action = chosen[0]!.slice(2) as Action;
  return refusedFlag(
    engine,
    action,
    given.filter((flag) => flag !== chosen[0]),
  );
}

function verbFlags(engine: Engine): string[] {
  return actionsOf(engine).map((a) => `--${a}`);
}

/** `--help` with no verb: the engine's overview, not clipanion's list of every verb class. */
export function isOverviewHelp(engine: Engine, args: readonly string[]): boolean {
  const verbs = verbFlags(engine);
  return args.some((arg) => HELP.test(arg)) && !args.some((arg) => verbs.includes(arg));
}

/** `capsule <engine> --help` without a verb: what the engine is, its verbs, and where each verb's flags are. */
export function engineOverview(engine: Engine, definitions: readonly Definition[]): string {
  const width = Math.max(...actionsOf(engine).map((a) => a.length)) + 4;
  const verbs = actionsOf(engine).map((verb) => {
    const option = definitions
      .flatMap((d) => d.options)
      .find((o) => o.definition.split(" ")[0] === `--${verb}`);
    return `  --${verb.padEnd(width)}${(option?.description ?? "").replace(/\s+/g, " ").trim()}`;
  });
  const details = engine.usage.details
    .split("\n")
    .map((line) => line.trim())
    .join("\n")
    .trim();
  const examples = engine.usage.examples.flatMap(([what, line]) => [`  ${what}:`, `    $ ${line}`, ""]);
  return [
    `${engine.usage.description}.`,
    "",
    `Usage: capsule ${engine.command} --<verb> [flags]   (one verb; capsule ${engine.command} --<verb> --help lists its flags)`,
    "",
    "Verbs:",
    ...verbs,
    "",
    details,
    "",
    "Examples:",
    ...examples,
  ].join("\n");
}
