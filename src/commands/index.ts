import { Builtins, Cli, type CommandClass } from "clipanion";
import { buildInfo } from "../version.js";
import { ErrorCode } from "../domain/errors.js";
import { type CapsuleContext, EXIT, errorLine } from "./base-command.js";

type Loader = () => Promise<Array<CommandClass<CapsuleContext>>>;

/**
 * Every command but the engines' by its first word, loaded on demand: each pulls in heavy SDKs (S3, PostgreSQL,
 * Kubernetes, cdk8s), and a CronJob's `capsule run` or a `capsule plan` should not pay for the others at start-up.
 * Any other word may be an engine's (`capsule pg`): the registry knows those.
 */
const COMMANDS: Record<string, Loader> = {
  version: async () => [(await import("./version.js")).VersionCommand],
  plan: async () => [(await import("./plan.js")).PlanCommand],
  // run declares the in-cluster restore flags of every engine, so every engine loads before its module does.
  run: async () => {
    await (await import("../engines/registry.js")).loadEngines();
    return [(await import("./run.js")).RunCommand];
  },
  start: async () => [(await import("./start.js")).StartCommand],
  serve: async () => [(await import("./serve.js")).ServeCommand],
  install: async () => [(await import("./install.js")).InstallCommand],
  completion: async () => [(await import("./completion.js")).CompletionCommand],
};

/** Commands that read the whole CLI's definition (`capsule completion` writes a script for every command). */
const NEEDS_ALL = new Set(["completion"]);

/** The CLI with the command `argv` names, or with every command (for help, or a word capsule does not know). */
export async function buildCli(argv: readonly string[] = []): Promise<Cli<CapsuleContext>> {
  const cli = new Cli<CapsuleContext>({
    binaryLabel: "capsule — backup and restore for PostgreSQL, Redis and Elasticsearch",
    binaryName: "capsule",
    binaryVersion: buildInfo.version,
  });
  cli.register(Builtins.HelpCommand);
  cli.register(Builtins.VersionCommand);
  for (const command of await commandsFor(argv[0])) cli.register(command);
  return cli;
}

async function commandsFor(word: string | undefined): Promise<Array<CommandClass<CapsuleContext>>> {
  if (word !== undefined && word in COMMANDS && !NEEDS_ALL.has(word)) return COMMANDS[word]!();
  const { loadEngine, loadEngines, profileForCommand } = await import("../engines/registry.js");
  const { engineVerbClasses } = await import("./engine-commands.js");
  const profile = profileForCommand(word);
  if (profile) return engineVerbClasses(await loadEngine(profile.name));
  const engines = await loadEngines();
  const [version = [], ...others] = await Promise.all(Object.values(COMMANDS).map((load) => load()));
  return [...version, ...engines.flatMap(engineVerbClasses), ...others.flat()];
}

/** Runs the CLI with the process' streams; resolves to the exit code. */
export async function runCli(
  argv: string[],
  context: {
    stdin?: NodeJS.ReadableStream;
    stdout?: NodeJS.WritableStream;
    stderr?: NodeJS.WritableStream;
    env?: NodeJS.ProcessEnv;
  } = {},
): Promise<number> {
  const cli = await buildCli(argv);
  const runContext = {
    stdin: (context.stdin ?? process.stdin) as NodeJS.ReadStream,
    stdout: (context.stdout ?? process.stdout) as NodeJS.WriteStream,
    stderr: (context.stderr ?? process.stderr) as NodeJS.WriteStream,
    env: context.env ?? process.env,
  } as Parameters<Cli<CapsuleContext>["run"]>[1];
  if (argv.length === 0 || (argv.length === 1 && (argv[0] === "--help" || argv[0] === "-h"))) {
    const { cliOverview } = await import("./overview.js");
    runContext.stdout?.write(cliOverview(cli));
    return 0;
  }
  const problem = await engineArgvProblemOf(cli, argv);
  if (problem !== undefined) {
    if (problem.stdout) runContext.stdout?.write(problem.stdout);
    if (problem.stderr) runContext.stderr?.write(problem.stderr);
    return problem.code;
  }
  let command: ReturnType<Cli<CapsuleContext>["process"]>;
  try {
    command = cli.process(argv, runContext);
  } catch (error) {
    // Unknown commands and bad flags: one line on stderr (clipanion prints the whole usage, in colour, on stdout).
    runContext.stderr?.write(parseErrorLine(cli, error, argv));
    return EXIT.usage;
  }
  return cli.run(command, runContext);
}

/**
 * For an engine's command line, what must be said before clipanion parses it (its verb classes know only their own
 * flags): the verb missing or doubled, a flag the mode refuses; or the engine's overview for `--help` without a verb.
 */
async function engineArgvProblemOf(
  cli: Cli<CapsuleContext>,
  argv: readonly string[],
): Promise<{ stdout?: string; stderr?: string; code: number } | undefined> {
  if (argv[0] === undefined || argv[0] in COMMANDS) return undefined;
  const { profileForCommand, engineNamed } = await import("../engines/registry.js");
  const profile = profileForCommand(argv[0]);
  if (!profile) return undefined;
  const { engineArgvProblem, engineOverview, isOverviewHelp } = await import("./engine-commands.js");
  const engine = engineNamed(profile.name);
  const definitions = cli.definitions().filter((d) => d.path === `capsule ${engine.command}`);
  const args = argv.slice(1);
  if (isOverviewHelp(engine, args)) return { stdout: engineOverview(engine, definitions), code: 0 };
  const problem = engineArgvProblem(engine, args, definitions);
  if (problem === undefined) return undefined;
  return {
    stderr: errorLine(ErrorCode.Usage, `${problem} (see: capsule ${engine.command} --help)`),
    code: EXIT.usage,
  };
}

/** clipanion's parse error as capsule's one-line usage error: its first line, and where to read more. */
function parseErrorLine(cli: Cli<CapsuleContext>, error: unknown, argv: readonly string[]): string {
  const message = (error instanceof Error ? error.message : String(error)).split("\n")[0]?.trim() ?? "";
  const first = argv[0];
  if (/^Command not found/.test(message))
    return errorLine(
      ErrorCode.Usage,
      `unknown command ${JSON.stringify(argv.join(" "))} (see: capsule --help)`,
    );
  const known = first !== undefined && cli.definitions().some((d) => d.path === `capsule ${first}`);
  const help = known ? `capsule ${first} --help` : "capsule --help";
  return errorLine(ErrorCode.Usage, `${message.replace(/\s*;?\s*$/, "")} (see: ${help})`);
}
