#!/usr/bin/env node
/** The `capsule` binary: builds the CLI and runs it. Everything else lives in commands/. */
import { runCli } from "./commands/index.js";

process.exitCode = await runCli(process.argv.slice(2));
