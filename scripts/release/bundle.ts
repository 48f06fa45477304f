/**
 * capsule as one CommonJS file: what a Node single executable application runs (it takes one script, no ESM, no
 * node_modules). esbuild follows the commands' lazy `import("./pg.js")` calls and inlines them, so the binary holds
 * every command.
 */
import * as esbuild from "esbuild";
import { builtinModules } from "node:module";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { PAGE_FILES } from "../../src/status/page-files.js";
import { LOADED_ON_USE } from "../../src/util/load-on-use.js";
import type { BuildStamp } from "../../src/build-stamp.js";

const STAMP_MODULE = /[\\/]src[\\/]build-stamp\.ts$/;
const PAGE_FILES_MODULE = /[\\/]src[\\/]status[\\/]page-files\.ts$/;
const LOAD_ON_USE_MODULE = /[\\/]src[\\/]util[\\/]load-on-use\.ts$/;

/**
 * Optional packages that dependencies `require()` inside a `try` and do without when absent (native speed-ups,
 * alternative signers). Not installed, so esbuild would leave the `require` in the bundle, and in a single executable
 * the first such call prints a multi-line warning on stderr. They are bundled as a module that fails like an absent
 * package, which is what the dependency expects.
 */
const ABSENT_OPTIONAL = [
  "pg-native", // pg: the libpq binding
  "encoding", // node-fetch (client-node): non-UTF-8 bodies
  "bufferutil", // ws (client-node watches): native masking
  "utf-8-validate", // ws: native UTF-8 check
  "@aws-sdk/signature-v4-crt", // AWS SDK: the CRT signer (multi-region access points)
  "@aws-sdk/signature-v4a",
];
const ABSENT = new RegExp(`^(${ABSENT_OPTIONAL.map((m) => m.replace(/[/.]/g, "\\$&")).join("|")})$`);

export async function bundleCli(root: string, stamp: BuildStamp, outfile: string): Promise<void> {
  let stamped = 0;
  let embedded = 0;
  let lazyLoaders = 0;
  const result = await esbuild.build({
    entryPoints: [path.join(root, "src", "cli.ts")],
    outfile,
    bundle: true,
    platform: "node",
    format: "cjs",
    target: `node${process.versions.node}`,
    logLevel: "silent",
    metafile: true,
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
      {
        // The status page's files have nowhere to live beside a single executable: they become code too.
        name: "capsule-page-files",
        setup(build) {
          build.onLoad({ filter: PAGE_FILES_MODULE }, async () => {
            embedded += 1;
            const files: Record<string, string> = {};
            for (const file of PAGE_FILES)
              files[file] = (await readFile(path.join(root, "src", "status", "page", file))).toString(
                "base64",
              );
            return {
              loader: "ts",
              contents:
                `const FILES: Record<string, string> = ${JSON.stringify(files)};\n` +
                `export function readPageFile(file: string): Buffer { return Buffer.from(FILES[file] ?? "", "base64"); }\n`,
            };
          });
        },
      },
      {
        // A require by name is invisible to esbuild (and import.meta is empty in CommonJS): each package loaded on
        // use is required by its literal name instead, so it is in the bundle and still evaluated only when used.
        name: "capsule-load-on-use",
        setup(build) {
          build.onLoad({ filter: LOAD_ON_USE_MODULE }, () => {
            lazyLoaders += 1;
            const loaders = LOADED_ON_USE.map(
              (m) => `  ${JSON.stringify(m)}: () => require(${JSON.stringify(m)}),`,
            );
            return {
              loader: "ts",
              contents:
                `const LOADERS: Record<string, () => unknown> = {\n${loaders.join("\n")}\n};\n` +
                `export function loadOnUse<T>(specifier: string): () => T {\n` +
                `  let loaded: T | undefined;\n` +
                `  return () => (loaded ??= LOADERS[specifier]!() as T);\n` +
                `}\n`,
            };
          });
        },
      },
      {
        name: "capsule-absent-optional",
        setup(build) {
          build.onResolve({ filter: ABSENT }, (args) => ({ path: args.path, namespace: "absent" }));
          build.onLoad({ filter: /.*/, namespace: "absent" }, (args) => ({
            loader: "js",
            contents:
              `const error = new Error(${JSON.stringify(`Cannot find module '${args.path}'`)});\n` +
              `error.code = "MODULE_NOT_FOUND";\nthrow error;\n`,
          }));
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
  if (embedded !== 1)
    throw new Error(
      "bundling src/cli.ts: src/status/page-files.ts was not bundled, the status page is missing",
    );
  if (lazyLoaders !== 1)
    throw new Error(
      "bundling src/cli.ts: src/util/load-on-use.ts was not replaced, the cloud SDKs are missing",
    );
  // The binary's require() loads built-in modules only: anything else left outside the bundle fails at run time.
  const builtins = new Set(builtinModules);
  const external = Object.values(result.metafile.outputs)
    .flatMap((output) => output.imports)
    .filter((i) => i.external && !i.path.startsWith("node:") && !builtins.has(i.path))
    .map((i) => i.path);
  if (external.length > 0)
    throw new Error(
      `bundling src/cli.ts: not bundled: ${[...new Set(external)].join(", ")} ` +
        `(install it, or list it in ABSENT_OPTIONAL in scripts/release/bundle.ts if it is optional)`,
    );
}
