#!/usr/bin/env node
/** The `capsule` binary: builds the CLI and runs it. Everything else lives in commands/. */
import { runCli } from "./commands/index.js";

// No top-level await: the release binary bundles this file as CommonJS (docs/adr/0008).
void runCli(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
