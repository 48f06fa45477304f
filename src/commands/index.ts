import { Builtins, Cli } from "clipanion";
import { buildInfo } from "../version.js";
import { EsCommand } from "./es.js";
import { InstallCommand } from "./install.js";
import { PgCommand } from "./pg.js";
import { PlanCommand } from "./plan.js";
import { RedisCommand } from "./redis.js";
import { ServeCommand } from "./serve.js";
import { StartCommand } from "./start.js";
import { RunCommand } from "./run.js";
import { VersionCommand } from "./version.js";

export function buildCli(): Cli {
  const cli = new Cli({
    binaryLabel: "capsule — backup and restore for PostgreSQL, Redis and Elasticsearch",
    binaryName: "capsule",
    binaryVersion: buildInfo.version,
  });
  cli.register(Builtins.HelpCommand);
  cli.register(Builtins.VersionCommand);
  cli.register(VersionCommand);
  cli.register(PgCommand);
  cli.register(RedisCommand);
  cli.register(EsCommand);
  cli.register(PlanCommand);
  cli.register(StartCommand);
  cli.register(ServeCommand);
  cli.register(RunCommand);
  cli.register(InstallCommand);
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
  const cli = buildCli();
  const runContext = {
    stdin: (context.stdin ?? process.stdin) as NodeJS.ReadStream,
    stdout: (context.stdout ?? process.stdout) as NodeJS.WriteStream,
    stderr: (context.stderr ?? process.stderr) as NodeJS.WriteStream,
    env: context.env ?? process.env,
  } as Parameters<Cli["run"]>[1];
  let command: ReturnType<Cli["process"]>;
  try {
    command = cli.process(argv, runContext);
  } catch (error) {
    // Unknown commands and bad flags: on stderr, not where clipanion puts them (stdout).
    runContext.stderr?.write(cli.error(error));
    return 1;
  }
  return cli.run(command, runContext);
}
