#!/usr/bin/env node
/** The `capsule` binary: builds the CLI and runs it. Everything else lives in commands/. */
import { enableCompileCache } from "node:module";

// Node keeps the compiled code of capsule's modules on disk (os.tmpdir(), or $NODE_COMPILE_CACHE;
// NODE_DISABLE_COMPILE_CACHE=1 turns it off): compiling them anew was a tenth of a warm `--list`. Enabled before the
// CLI's modules load, hence their dynamic import. Not for `capsule run`: a CronJob's pod starts with an empty /tmp,
// so it would only write a cache nobody reads.
if (process.argv[2] !== "run") enableCompileCache();

// No top-level await: the release binary bundles this file as CommonJS (docs/adr/0008).
void import("./commands/index.js")
  .then(({ runCli }) => runCli(process.argv.slice(2)))
  .then((code) => {
    process.exitCode = code;
  });
