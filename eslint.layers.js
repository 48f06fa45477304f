// @ts-check
/**
 * The floors of the house (docs/adr/0018), held by lint: each folder of src/ names the folders it must never import.
 * A lower floor never imports a higher one, so there are no upward arrows and no import circles between folders.
 *
 *   commands → daemon → reconciler → status → runtime, requests, install → compiler, scanner → plan → engines
 *   → storage → k8s → util → domain
 */

/** Every folder of src/, for rules that allow only a few. */
const ALL = [
  "commands",
  "completion",
  "daemon",
  "reconciler",
  "status",
  "runtime",
  "requests",
  "install",
  "compiler",
  "scanner",
  "plan",
  "engines",
  "storage",
  "k8s",
  "util",
  "domain",
];

/** Folder → the folders it may not import. */
const FORBIDDEN = {
  domain: ALL.filter((f) => f !== "domain"),
  util: ALL.filter((f) => f !== "domain" && f !== "util"),
  k8s: ALL.filter((f) => !["domain", "util", "k8s"].includes(f)),
  storage: ALL.filter((f) => !["domain", "util", "storage"].includes(f)),
  engines: ALL.filter((f) => !["domain", "util", "engines"].includes(f)),
  plan: ALL.filter((f) => !["domain", "util", "storage", "engines", "plan"].includes(f)),
  compiler: [
    "commands",
    "completion",
    "daemon",
    "reconciler",
    "status",
    "runtime",
    "requests",
    "install",
    "scanner",
    "k8s",
  ],
  scanner: [
    "commands",
    "completion",
    "daemon",
    "reconciler",
    "status",
    "runtime",
    "requests",
    "install",
    "compiler",
    "k8s",
  ],
  install: ["commands", "completion", "daemon", "reconciler", "status", "runtime", "requests"],
  requests: ["commands", "completion", "daemon", "reconciler", "status", "runtime", "install"],
  runtime: ["commands", "completion", "daemon", "reconciler", "status", "requests", "install"],
  status: ["commands", "completion", "daemon", "reconciler"],
  reconciler: ["commands", "completion", "daemon"],
  daemon: ["commands", "completion"],
  completion: ["commands", "daemon", "reconciler", "status", "runtime", "requests", "install"],
};

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
