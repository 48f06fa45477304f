/**
 * capsule as one CommonJS file: what a Node single executable application runs (it takes one script, no ESM, no
 * node_modules). esbuild follows the commands' lazy `import("./pg.js")` calls and inlines them, so the binary holds
 * every command.
 */
import * as esbuild from "esbuild";
import path from "node:path";
import type { BuildStamp } from "../../src/build-stamp.js";

const STAMP_MODULE = /[\\/]src[\\/]build-stamp\.ts$/;

export async function bundleCli(root: string, stamp: BuildStamp, outfile: string): Promise<void> {
  let stamped = 0;
  const result = await esbuild.build({
    entryPoints: [path.join(root, "src", "cli.ts")],
    outfile,
    bundle: true,
    platform: "node",
    format: "cjs",
    target: `node${process.versions.node}`,
    logLevel: "silent",
    plugins: [
      {
        // The binary has no build-stamp.json beside it (and no import.meta in CommonJS): the stamp becomes code.
        name: "capsule-build-stamp",
        setup(build) {
          build.onLoad({ filter: STAMP_MODULE }, () => {
            stamped += 1;
            return {
              loader: "ts",
              contents: `export function readBuildStamp() { return ${JSON.stringify(stamp)}; }\n`,
            };
          });
        },
      },
    ],
  });
  // A warning here is a release that misbehaves later (an import.meta left empty, a require esbuild cannot see).
  const problems = [...result.errors, ...result.warnings];
  if (problems.length > 0) {
    const text = await esbuild.formatMessages(problems, { kind: "warning" });
    throw new Error(`bundling src/cli.ts:\n${text.join("")}`);
  }
  if (stamped !== 1)
    throw new Error("bundling src/cli.ts: src/build-stamp.ts was not bundled, nothing stamped");
}
