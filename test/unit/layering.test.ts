/**
 * The floors of src/ (eslint.layers.js, docs/adr/0018) are held by lint: an import that breaks a layer fails
 * `npm run lint`. These cases prove the rule bites where the issue says it must, and lets the allowed imports pass.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Linter } from "eslint";
// @ts-expect-error: a plain JavaScript module of the ESLint configuration, without types.
import { layers } from "../../eslint.layers.js";

const linter = new Linter({ configType: "flat" });

function lint(file: string, specifier: string): string[] {
  const config = [
    { files: ["**/*.ts"], languageOptions: { sourceType: "module" as const } },
    ...(layers as Linter.Config[]),
  ];
  return linter
    .verify(`import { x } from "${specifier}";\nexport { x };\n`, config, { filename: file })
    .map((m) => m.message);
}

describe("layering lint", () => {
  const refused: Array<[string, string]> = [
    ["src/domain/backup.ts", "../storage/layout.js"],
    ["src/engines/postgres/restore.ts", "../../commands/base-command.js"],
    ["src/engines/redis/engine.ts", "../../runtime/verify.js"],
    ["src/engines/registry.ts", "../storage/backup-store.js"],
    ["src/compiler/cronjob.ts", "../k8s/kube-client.js"],
    ["src/scanner/scan.ts", "../k8s/cnvrgapps.js"],
    ["src/storage/backup-store.ts", "../engines/registry.js"],
    ["src/k8s/workloads.ts", "../compiler/job-from-cronjob.js"],
    ["src/requests/watcher.ts", "../status/metrics.js"],
    ["src/daemon/daemon.ts", "../commands/start.js"],
  ];
  for (const [file, specifier] of refused) {
    test(`GIVEN ${file} WHEN it imports ${specifier} THEN lint refuses it`, () => {
      const messages = lint(file, specifier);
      assert.equal(messages.length, 1, messages.join("\n"));
      assert.match(messages[0]!, /must not import them/);
    });
  }

  const allowed: Array<[string, string]> = [
    ["src/engines/postgres/restore.ts", "../../domain/errors.js"],
    ["src/engines/postgres/restore.ts", "../engine.js"],
    ["src/runtime/restore.ts", "../engines/registry.js"],
    ["src/storage/backup-store.ts", "../domain/artifact.js"],
    ["src/commands/run.ts", "../runtime/backup.js"],
    ["src/plan/types.ts", "../domain/connection.js"],
  ];
  for (const [file, specifier] of allowed) {
    test(`GIVEN ${file} WHEN it imports ${specifier} THEN lint lets it`, () => {
      assert.deepEqual(lint(file, specifier), []);
    });
  }
});
