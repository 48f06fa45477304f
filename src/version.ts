import { readFileSync } from "node:fs";

/**
 * capsule's version, read from package.json next to the built or source tree. The release build (issue 11) stamps
 * commit and date; a development tree reports "dev".
 */
function readPackageVersion(): string {
  for (const candidate of ["../package.json", "../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(candidate, import.meta.url), "utf8")) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === "capsule" && pkg.version) return pkg.version;
    } catch {
      // try the next candidate: src/ and dist/src/ sit at different depths
    }
  }
  return "0.0.0";
}

export const buildInfo = {
  version: readPackageVersion(),
  commit: "dev",
  date: "dev",
  node: process.version,
} as const;
