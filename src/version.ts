import { readBuildStamp, type BuildStamp } from "./build-stamp.js";

/** capsule's version and build, as `capsule version`, `/healthz` and the `capsule_build_info` metric report them. */
export interface BuildInfo extends BuildStamp {
  /** The Node.js runtime: the one on PATH, or the one built into the release binary. */
  readonly node: string;
}

export const buildInfo: BuildInfo = { ...readBuildStamp(), node: process.version };
