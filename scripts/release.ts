/**
 * `npm run release [-- --out DIR]`: builds dist/release/capsule-<version>-<os>-<arch> and its .sha256
 * (scripts/release/build-release.ts, docs/adr/0008).
 */
import path from "node:path";
import { parseArgs } from "node:util";
import { buildRelease } from "./release/build-release.js";

const root = path.resolve(import.meta.dirname, "..");
const { values } = parseArgs({
  options: { out: { type: "string", default: path.join(root, "dist", "release") } },
});
const release = await buildRelease({ root, outDir: path.resolve(values.out) });
const { version, commit, date } = release.stamp;
console.log(
  `${path.relative(process.cwd(), release.binary)} (${(release.sizeBytes / 2 ** 20).toFixed(1)} MiB, ` +
    `capsule ${version}, commit ${commit}, built ${date})\n${release.sha256}  ${path.basename(release.binary)}`,
);
