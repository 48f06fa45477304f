import { readFileSync } from "node:fs";

/** What a build stamps into capsule: the package version, the git commit it was built from, and when. */
export interface BuildStamp {
  readonly version: string;
  readonly commit: string;
  /** UTC ISO-8601, or "dev". */
  readonly date: string;
}

/** Written by `npm run build` (scripts/build-stamp.ts) next to the compiled dist/src/*.js. */
export const STAMP_FILE = "build-stamp.json";

/**
 * The stamp of this tree. `npm run build` writes dist/src/build-stamp.json; a source tree run through tsx has none
 * and reports commit and date "dev". The release binary never gets here: its bundle replaces this module with the
 * stamped values (scripts/release.ts), because a single executable has no file next to it to read.
 */
export function readBuildStamp(): BuildStamp {
  const stamped = readJson<Partial<BuildStamp>>(new URL(`./${STAMP_FILE}`, import.meta.url));
  if (stamped?.version && stamped.commit && stamped.date)
    return { version: stamped.version, commit: stamped.commit, date: stamped.date };
  return { version: packageVersion(), commit: "dev", date: "dev" };
}

function packageVersion(): string {
  // src/ and dist/src/ sit at different depths below package.json.
  for (const candidate of ["../package.json", "../../package.json"]) {
    const pkg = readJson<{ name?: string; version?: string }>(new URL(candidate, import.meta.url));
    if (pkg?.name === "capsule" && pkg.version) return pkg.version;
  }
  return "0.0.0";
}

function readJson<T>(url: URL): T | undefined {
  try {
    return JSON.parse(readFileSync(url, "utf8")) as T;
  } catch {
    return undefined;
  }
}
