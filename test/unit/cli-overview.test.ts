/** `capsule --help`: each engine once, with its verbs; every other command once; clipanion's per-verb lines not at all. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { actionsOf } from "../../src/commands/action-flags.js";
import { allEngines } from "../../src/engines/registry.js";
import { capsule } from "../support/cli.js";

describe("capsule --help", () => {
  for (const argv of [["--help"], ["-h"], []]) {
    test(`GIVEN capsule ${argv.join(" ")} WHEN it prints the overview THEN each engine is one entry naming all its verbs and each command is listed once`, async () => {
      const help = await capsule(argv);
      assert.equal(help.code, 0, help.stderr);
      const entries = help.stdout.split("\n").filter((line) => line.startsWith("  capsule "));
      for (const engine of allEngines()) {
        const lines = entries.filter((line) => line.startsWith(`  capsule ${engine.command} `));
        assert.equal(lines.length, 1, `one entry for capsule ${engine.command}: ${lines.join(" / ")}`);
        for (const verb of actionsOf(engine)) assert.match(lines[0]!, new RegExp(`--${verb}\\b`));
      }
      for (const command of ["plan", "run", "start", "serve", "install", "version", "completion"]) {
        assert.equal(entries.filter((line) => line === `  capsule ${command}`).length, 1, command);
      }
      assert.doesNotMatch(help.stdout, /\[--bucket #0\]/, "no per-verb usage lines");
    });
  }
});
