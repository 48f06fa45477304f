/**
 * The table of which flags each `capsule <engine> --<action>` takes (src/commands/action-flags.ts): complete for
 * every flag the three engine commands declare, and refusing what an action would not honour.
 */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { ACTIONS, refusedFlag, tableFlags } from "../../src/commands/action-flags.js";
import { buildCli } from "../../src/commands/index.js";
import type { EngineName } from "../../src/domain/backup.js";
import { loadEngines } from "../../src/engines/registry.js";

// The flag table reads the engines' own flags: a command loads its engine before it parses, so do these tests.
before(() => loadEngines());

const COMMANDS: Array<[string, EngineName]> = [
  ["pg", "postgresql"],
  ["redis", "redis"],
  ["es", "elasticsearch"],
];

describe("the flags each action takes", () => {
  for (const [command, engine] of COMMANDS) {
    test(`GIVEN every flag capsule ${command} declares WHEN looked up THEN the table names it, so none can be silently ignored`, async () => {
      const cli = await buildCli([command]);
      const definition = cli.definitions().find((d) => d.path === `capsule ${command}`);
      assert.ok(definition, `capsule ${command} is registered`);
      const declared = definition.options
        .map((o) => o.definition.split(" ")[0]!.split(",").at(-1)!)
        .filter((flag) => !ACTIONS.some((a) => flag === `--${a}`) && flag !== "--output");
      const known = tableFlags(engine);
      assert.deepEqual(
        declared.filter((flag) => !known.has(flag)),
        [],
      );
    });
  }

  for (const [engine, action, given, expected] of [
    ["postgresql", "delete", ["--yes", "--dry-run"], "--dry-run does not apply to --delete"],
    ["postgresql", "restore", ["--id", "--to"], "--to does not apply to --restore"],
    ["postgresql", "list", ["--keep-last"], "--keep-last does not apply to --list"],
    ["postgresql", "verify", ["--id", "--host"], "--host applies to --verify only with --verify-server"],
    [
      "postgresql",
      "restore",
      ["--id", "--target"],
      "--target applies to --restore only with --in-cluster or --physical",
    ],
    [
      "postgresql",
      "create",
      ["--in-cluster", "--bucket"],
      /^--bucket does not apply to --create --in-cluster: /,
    ],
    ["postgresql", "list", ["--in-cluster"], "--in-cluster does not apply to --list"],
    ["postgresql", "download", ["--id", "--to", "-o"], "-o does not apply to --download"],
    ["redis", "create", ["--listen-port"], "--listen-port does not apply to --create"],
    ["redis", "download", ["--id", "--to", "--raw"], "--raw does not apply to --download"],
    ["elasticsearch", "list", ["--replace"], "--replace does not apply to --list"],
    ["elasticsearch", "verify", ["--insecure-skip-tls-verify"], /only with --verify-url$/],
  ] as const) {
    test(`GIVEN ${engine} --${action} ${given.join(" ")} WHEN checked THEN one line names the flag`, () => {
      const refused = refusedFlag(engine, action, given);
      assert.ok(refused !== undefined);
      if (typeof expected === "string") assert.equal(refused, expected);
      else assert.match(refused, expected);
    });
  }

  for (const [engine, action, given] of [
    ["postgresql", "prune", ["--dry-run", "--yes", "--keep-last", "--target", "--bucket", "-o"]],
    ["postgresql", "verify", ["--id", "--verify-server", "--host", "--port"]],
    ["postgresql", "restore", ["--in-cluster", "--id", "--to-database", "--yes"]],
    ["postgresql", "download", ["--id", "--to", "--raw", "--force"]],
    ["redis", "restore", ["--id", "--host", "--listen-port", "--detach-replica", "--sse"]],
    ["elasticsearch", "verify", ["--id", "--verify-url", "--insecure-skip-tls-verify"]],
    ["elasticsearch", "create", ["--url", "--indices", "--encrypt-to"]],
  ] as const) {
    test(`GIVEN ${engine} --${action} ${given.join(" ")} WHEN checked THEN every flag applies`, () => {
      assert.equal(refusedFlag(engine, action, given), undefined);
    });
  }
});
