/**
 * A Node.js single executable application (https://nodejs.org/docs/latest-v20.x/api/single-executable-applications.html):
 * a copy of the node binary with the bundled script injected as the NODE_SEA_BLOB resource by postject.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { inject } from "postject";

/** The fuse node checks at start-up; postject flips it so node runs the blob instead of its usual CLI. */
const SEA_FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";

export async function makeExecutable(options: {
  /** The CommonJS script to run. */
  script: string;
  /** Where to write the executable. */
  output: string;
  /** A directory for the blob and its config. */
  workDir: string;
}): Promise<void> {
  // The running node is the base binary: the blob (with its code cache) is only valid for the node that made it.
  const node = process.execPath;
  // A node linked against a shared libnode (some distribution packages) would need that library at run time.
  if ((process.config.variables as { node_shared?: boolean }).node_shared)
    throw new Error(
      `${node} is linked against a shared libnode; build the release with an official Node.js binary`,
    );
  const blob = path.join(options.workDir, "capsule.blob");
  const config = path.join(options.workDir, "sea-config.json");
  writeFileSync(
    config,
    JSON.stringify({
      main: options.script,
      output: blob,
      // The one-line-error contract: nothing on stderr that capsule did not write.
      disableExperimentalSEAWarning: true,
      useSnapshot: false,
      // V8's compiled code for the script, made by this same node: start-up skips most parsing.
      useCodeCache: true,
    }),
  );
  const made = spawnSync(node, ["--experimental-sea-config", config], { encoding: "utf8" });
  if (made.status !== 0)
    throw new Error(`${node} --experimental-sea-config failed: ${(made.stderr || made.stdout).trim()}`);
  copyFileSync(node, options.output);
  chmodSync(options.output, 0o755);
  await inject(options.output, "NODE_SEA_BLOB", readFileSync(blob), { sentinelFuse: SEA_FUSE });
}
