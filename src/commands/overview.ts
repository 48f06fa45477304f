/**
 * `capsule --help`: one entry per engine and per other command. clipanion's own list would show each engine's ten
 * verb classes (commands/engine-commands.ts) as ten long lines; an operator wants the engines and their verbs first,
 * and each engine's `--help` for the rest.
 */
import type { Cli } from "clipanion";
import { allEngines } from "../engines/registry.js";
import { buildInfo } from "../version.js";
import { actionsOf } from "./action-flags.js";
import type { CapsuleContext } from "./base-command.js";

export function cliOverview(cli: Cli<CapsuleContext>): string {
  const engines = allEngines();
  const enginePaths = new Set(engines.map((e) => `capsule ${e.command}`));
  const entry = (usage: string, description: string) => `  ${usage}\n    ${description.trim()}\n`;
  return [
    `capsule ${buildInfo.version}: backup and restore for PostgreSQL, Redis and Elasticsearch\n`,
    "Engines: capsule <engine> --<verb> [flags]; capsule <engine> --help lists its verbs, --<verb> --help a verb's flags\n",
    ...engines.map((e) =>
      entry(
        `capsule ${e.command} ${actionsOf(e)
          .map((a) => `--${a}`)
          .join("|")}`,
        `${e.usage.description}`,
      ),
    ),
    "Commands: capsule <command> --help for its flags\n",
    ...cli
      .definitions()
      .filter((d) => !enginePaths.has(d.path) && d.path !== "capsule")
      .sort((a, b) => a.path.localeCompare(b.path))
      .map((d) => entry(d.path, d.description ?? "")),
  ].join("\n");
}
