import { Builtins, Cli, type CommandClass } from "clipanion";
import { buildInfo } from "../version.js";
import { ErrorCode } from "../domain/errors.js";
import { type CapsuleContext, EXIT, errorLine } from "./base-command.js";

type Loader = () => Promise<CommandClass<CapsuleContext>>;

/**
 * Every command by its first word, loaded on demand: each pulls in heavy SDKs (S3, PostgreSQL, Kubernetes, cdk8s),
 * and a CronJob's `capsule run` or a `capsule plan` should not pay for the others at start-up.
 */
const COMMANDS: Record<string, Loader> = {
  version: async () => (await import("./version.js")).VersionCommand,
  pg: async () => (await import("./pg.js")).PgCommand,
  redis: async () => (await import("./redis.js")).RedisCommand,
  es: async () => (await import("./es.js")).EsCommand,
  plan: async () => (await import("./plan.js")).PlanCommand,
  run: async () => (await import("./run.js")).RunCommand,
  start: async () => (await import("./start.js")).StartCommand,
  serve: async () => (await import("./serve.js")).ServeCommand,
  install: async () => (await import("./install.js")).InstallCommand,
  completion: async () => (await import("./completion.js")).CompletionCommand,
};

/** The CLI with the command `argv` names, or with every command (for help, or a word capsule does not know). */
export async function buildCli(argv: readonly string[] = []): Promise<Cli<CapsuleContext>> {
  const cli = new Cli<CapsuleContext>({
    binaryLabel: "capsule — backup and restore for PostgreSQL, Redis and Elasticsearch",
    binaryName: "capsule",
    binaryVersion: buildInfo.version,
  });
  cli.register(Builtins.HelpCommand);
  cli.register(Builtins.VersionCommand);
  const first = argv[0];
  const loaders = first !== undefined && first in COMMANDS ? [COMMANDS[first]!] : Object.values(COMMANDS);
  for (const command of await Promise.all(loaders.map((load) => load()))) cli.register(command);
  return cli;
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
  let command: ReturnType<Cli<CapsuleContext>["process"]>;
  try {
    command = cli.process(argv, runContext);
  } catch (error) {
    // Unknown commands and bad flags: one line on stderr (clipanion prints the whole usage, in colour, on stdout).
    runContext.stderr?.write(parseErrorLine(error, argv));
    return EXIT.usage;
  }
  return cli.run(command, runContext);
}

/** clipanion's parse error as capsule's one-line usage error: its first line, and where to read more. */
function parseErrorLine(error: unknown, argv: readonly string[]): string {
  const message = (error instanceof Error ? error.message : String(error)).split("\n")[0]?.trim() ?? "";
  const first = argv[0];
  if (/^Command not found/.test(message))
    return errorLine(
      ErrorCode.Usage,
      `unknown command ${JSON.stringify(argv.join(" "))} (see: capsule --help)`,
    );
  const help = first !== undefined && first in COMMANDS ? `capsule ${first} --help` : "capsule --help";
  return errorLine(ErrorCode.Usage, `${message.replace(/\s*;?\s*$/, "")} (see: ${help})`);
}
