/**
 * `npm run build`'s last step: writes dist/src/build-stamp.json, which the compiled capsule reads for
 * `capsule version`, /healthz and capsule_build_info (src/build-stamp.ts).
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { STAMP_FILE } from "../src/build-stamp.js";
import { computeBuildStamp } from "./release/stamp.js";

const root = path.resolve(import.meta.dirname, "..");
const stamp = computeBuildStamp(root);
writeFileSync(path.join(root, "dist", "src", STAMP_FILE), `${JSON.stringify(stamp, null, 2)}\n`);
console.log(`stamped dist/src/${STAMP_FILE}: ${stamp.version} ${stamp.commit} ${stamp.date}`);
