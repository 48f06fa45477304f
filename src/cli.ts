#!/usr/bin/env -S node --max-semi-space-size=2
/**
 * The `capsule` binary: builds the CLI and runs it. Everything else lives in commands/.
 *
 * The young generation is capped at 2 MiB a semi-space (the shebang; V8 reads it only at start-up): a backup streams
 * hundreds of MB through short-lived 64 KiB buffers, and V8's default lets them pile up to 16 MiB a semi-space before
 * collecting. Measured on `capsule pg --create` of the 694 MB bench database: peak RSS 159–168 MB → 116–124 MB to
 * file://, 166–196 MB → 163–171 MB to s3://, time unchanged (docs/adr/0020).
 */
import { enableCompileCache } from "node:module";

// Node keeps the compiled code of capsule's modules on disk (os.tmpdir(), or $NODE_COMPILE_CACHE;
// NODE_DISABLE_COMPILE_CACHE=1 turns it off): compiling them anew was a tenth of a warm `--list`. Enabled before the
// CLI's modules load, hence their dynamic import. Not for `capsule run`: a CronJob's pod starts with an empty /tmp,
// so it would only write a cache nobody reads.
if (process.argv[2] !== "run") enableCompileCache();

// A reader that stops early (`capsule pg --list | head`) closes stdout, and Node raises EPIPE on the next write:
// unhandled, it ends the process with a stack trace, mid-restore if one is running. Nobody reads the output any
// more; the command finishes as it would have, and its exit code still says how it went.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code !== "EPIPE") throw error;
});

// No top-level await: the release binary bundles this file as CommonJS (docs/adr/0008).
void import("./commands/index.js")
  .then(({ runCli }) => runCli(process.argv.slice(2)))
  .then((code) => {
    process.exitCode = code;
  });
