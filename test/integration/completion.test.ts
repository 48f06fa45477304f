/**
 * `capsule completion bash|zsh|fish`: each script is loaded by the real shell and asked for completions (zsh on a
 * pseudo-terminal, since it completes only in its line editor).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import type { Definition } from "clipanion";
import { buildCli } from "../../src/commands/index.js";
import { completionModel } from "../../src/completion/model.js";
import { requireBinary } from "../harness/index.js";
import { capsule } from "../support/cli.js";

const exec = promisify(execFile);

describe("capsule completion", () => {
  const scripts: Record<string, string> = {};
  let dir: string;
  let definitions: Definition[];

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "capsule-completion-"));
    for (const shell of ["bash", "zsh", "fish"]) {
      const result = await capsule(["completion", shell]);
      assert.equal(result.code, 0, result.stderr);
      scripts[shell] = path.join(dir, `capsule.${shell}`);
      writeFileSync(scripts[shell], result.stdout);
    }
    definitions = (await buildCli()).definitions();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** What bash's completion function offers for the words typed so far (the last one is being completed). */
  async function bashComplete(...words: string[]): Promise<string[]> {
    const script = `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _capsule_complete; printf '%s\\n' "\${COMPREPLY[@]}"`;
    const { stdout } = await exec(
      requireBinary("bash", "bash"),
      ["-c", script, "bash", scripts["bash"]!, ...words],
      {
        cwd: dir,
      },
    );
    return stdout.split("\n").filter(Boolean);
  }

  /** What fish offers for the command line (`complete -C`), values only. */
  async function fishComplete(line: string): Promise<string[]> {
    const { stdout } = await exec(requireBinary("fish", "fish"), [
      "--no-config",
      "-c",
      `source ${scripts["fish"]}; complete -C '${line}'`,
    ]);
    return stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => l.split("\t")[0]!);
  }

  function flagsOf(command: string): string[] {
    const definition = definitions.find((d) => d.path === `capsule ${command}`);
    assert.ok(definition, `capsule ${command} is defined`);
    return definition.options.flatMap((o) => o.definition.split(" ")[0]!.split(","));
  }

  test("GIVEN the bash script WHEN completing capsule pg -- THEN every pg flag, verbs included, is offered", async () => {
    const offered = await bashComplete("capsule", "pg", "--");
    for (const verb of [
      "--create",
      "--list",
      "--describe",
      "--download",
      "--restore",
      "--delete",
      "--verify",
    ])
      assert.ok(offered.includes(verb), `${verb} offered`);
    for (const flag of flagsOf("pg").filter((f) => f.startsWith("--")))
      assert.ok(offered.includes(flag), `${flag} offered`);
    assert.ok(offered.includes("--help"));
    assert.deepEqual(await bashComplete("capsule", "pg", "--li"), ["--list"]);
  });

  test("GIVEN the bash script WHEN completing -o, a command, a shell name or a file THEN the fixed values or file names", async () => {
    assert.deepEqual(await bashComplete("capsule", "pg", "--list", "-o", ""), ["table", "json", "yaml"]);
    assert.deepEqual(await bashComplete("capsule", "redis", "--output", "y"), ["yaml"]);
    const commands = await bashComplete("capsule", "");
    for (const command of [
      "pg",
      "redis",
      "es",
      "plan",
      "run",
      "start",
      "serve",
      "install",
      "version",
      "completion",
    ])
      assert.ok(commands.includes(command), `${command} offered`);
    assert.deepEqual(await bashComplete("capsule", "completion", ""), ["bash", "zsh", "fish"]);
    writeFileSync(path.join(dir, "dump-2026.pgcustom"), "");
    assert.deepEqual(await bashComplete("capsule", "pg", "--download", "--to", "dump-"), [
      "dump-2026.pgcustom",
    ]);
  });

  test("GIVEN the bash script WHEN completing another engine THEN its own flags, not pg's", async () => {
    const redis = await bashComplete("capsule", "redis", "--");
    assert.ok(redis.includes("--detach-replica"));
    assert.ok(!redis.includes("--in-place"), "pg's --in-place is not a redis flag");
    const es = await bashComplete("capsule", "es", "--re");
    assert.deepEqual(es.sort(), [
      "--region",
      "--rename-pattern",
      "--rename-replacement",
      "--replace",
      "--restore",
    ]);
  });

  test("GIVEN the fish script WHEN parsed and asked THEN it completes commands, pg's flags and -o's values", async () => {
    await exec(requireBinary("fish", "fish"), ["--no-execute", scripts["fish"]!]);
    const pg = await fishComplete("capsule pg --");
    for (const flag of ["--list", "--restore", "--create", "--in-place", "--output"])
      assert.ok(pg.includes(flag), `${flag} offered`);
    assert.deepEqual(await fishComplete("capsule pg -o "), ["json", "table", "yaml"]);
    assert.ok((await fishComplete("capsule ")).includes("completion"));
    assert.ok(!(await fishComplete("capsule es --")).includes("--in-place"));
  });

  /** What zsh's completion system offers (test/support/zsh-complete.zsh drives zsh on a pseudo-terminal). */
  async function zshComplete(line: string): Promise<string[]> {
    const { stdout } = await exec(
      requireBinary("zsh", "zsh"),
      ["-f", path.join(import.meta.dirname, "..", "support", "zsh-complete.zsh"), scripts["zsh"]!, line],
      { timeout: 60_000 },
    );
    return stdout.split("\n").filter(Boolean);
  }

  test("GIVEN the zsh script WHEN parsed and asked on a terminal THEN it completes commands, pg's flags, -o's values and shells", async () => {
    await exec(requireBinary("zsh", "zsh"), ["-n", scripts["zsh"]!]);
    const commands = await zshComplete("capsule ");
    for (const command of ["pg", "redis", "es", "plan", "version", "completion"])
      assert.ok(commands.includes(command), `${command} offered`);
    const pg = await zshComplete("capsule pg --");
    for (const flag of ["--list", "--restore", "--create", "--in-place", "--output", "--help"])
      assert.ok(pg.includes(flag), `${flag} offered`);
    assert.ok(!pg.includes("--detach-replica"), "redis' --detach-replica is not a pg flag");
    assert.deepEqual(await zshComplete("capsule pg --li"), ["--list"]);
    assert.deepEqual(await zshComplete("capsule pg -o "), ["json", "table", "yaml"]);
    assert.deepEqual(await zshComplete("capsule completion "), ["bash", "fish", "zsh"]);
  });

  test("GIVEN an unknown shell WHEN capsule completion powershell, or no shell, THEN one line on stderr and exit 1", async () => {
    const result = await capsule(["completion", "powershell"]);
    assert.equal(result.code, 2);
    assert.equal(result.stdout, "");
    assert.equal(
      result.stderr,
      'capsule: CAPSULE_USAGE: unknown shell "powershell": expected one of bash, zsh, fish (see: capsule completion --help)\n',
    );
    const missing = await capsule(["completion"]);
    assert.equal(missing.code, 2);
    assert.equal(
      missing.stderr,
      "capsule: CAPSULE_USAGE: name the shell: bash, zsh, fish (see: capsule completion --help)\n",
    );
  });

  test("GIVEN definitions capsule cannot complete safely WHEN modelled THEN a clear error, not a broken script", () => {
    const base = { usage: "", options: [] };
    const none = { flags: {}, positionals: {} };
    assert.throws(
      () => completionModel("capsule", [{ ...base, path: "capsule pg backup" }], none),
      /cannot complete the command "capsule pg backup"/,
    );
    assert.throws(
      () =>
        completionModel(
          "capsule",
          [{ ...base, path: "capsule pg", options: [{ definition: "--x;rm #0", required: false }] }],
          none,
        ),
      /cannot complete the flag "--x;rm #0"/,
    );
    assert.throws(
      () =>
        completionModel(
          "capsule",
          [{ ...base, path: "capsule pg", options: [{ definition: "-o,--output #0", required: false }] }],
          { flags: { "--output": ["$(reboot)"] }, positionals: {} },
        ),
      /cannot complete the values of "-o,--output #0"/,
    );
  });
});
