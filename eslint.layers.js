// @ts-check
/**
 * The floors of the house (docs/adr/0018), held by lint: each folder of src/ names the folders it must never import.
 * A lower floor never imports a higher one, so there are no upward arrows and no import circles between folders.
 *
 *   commands → daemon → reconciler → status → runtime, requests, install → compiler, scanner → plan → engines
 *   → storage → k8s → util → domain
 */

/** Folder → the folders it may import (besides itself); it may import no other folder of src/. */
const BASE = ["util", "domain"];
/** The pure floors: no cluster, no network of their own. */
const PURE = ["plan", "engines", "storage", ...BASE];
const TOOLS = ["compiler", "scanner", "k8s", ...PURE];
const SERVICES = ["runtime", "requests", "install", ...TOOLS];
const MAY_IMPORT = {
  domain: [],
  util: ["domain"],
  k8s: BASE,
  storage: BASE,
  engines: BASE,
  plan: PURE.filter((f) => f !== "plan"),
  compiler: PURE,
  scanner: PURE,
  install: TOOLS,
  requests: TOOLS,
  runtime: TOOLS,
  completion: TOOLS,
  status: SERVICES,
  reconciler: ["status", ...SERVICES],
  daemon: ["reconciler", "status", ...SERVICES],
};
const ALL = ["commands", "completion", "daemon", "reconciler", "status", ...SERVICES];

/** Folder → the folders it may not import. */
const FORBIDDEN = Object.fromEntries(
  Object.entries(MAY_IMPORT).map(([folder, allowed]) => [
    folder,
    ALL.filter((f) => f !== folder && !allowed.includes(f)),
  ]),
);

/** One config object per folder: `no-restricted-imports` with a regex over relative import paths. */
export const layers = Object.entries(FORBIDDEN).map(([folder, forbidden]) => ({
  files: [`src/${folder}/**/*.ts`, `src/${folder}/**/*.js`],
  rules: {
    "no-restricted-imports": [
      "error",
      {
        patterns: [
          {
            regex: `^(\\.\\./)+(${forbidden.join("|")})(/|$)`,
            message: `src/${folder}/ is below these folders and must not import them (eslint.layers.js, docs/adr/0018).`,
          },
        ],
      },
    ],
  },
}));
