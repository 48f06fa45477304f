/**
 * Which flags each `capsule <engine> --<action>` takes: one table for every engine, checked before any I/O, so a
 * flag the chosen action would not honour is refused instead of silently ignored (`--delete --dry-run` once
 * deleted). A flag missing from an action's row is refused for it; `-o` is everyone's but `--download`'s and
 * `--delete`'s, which print nothing to stdout.
 */
import type { EngineName } from "../domain/backup.js";

export const ACTIONS = [
  "create",
  "list",
  "describe",
  "download",
  "restore",
  "delete",
  "prune",
  "check",
  "verify",
  /** Redis only: put back a server a killed restore left a replica of capsule's listener. */
  "recover",
] as const;
export type Action = (typeof ACTIONS)[number];

/**
 * A row of the table: an action alone, or an action with a modifier flag that changes what it takes
 * (`--create --in-cluster` runs with the target's own bucket and connection; `pg --verify --verify-server` drills
 * on the server the connection flags name).
 */
export type Mode = Action | `${Action} ${string}`;

interface Row {
  /** Flags every engine takes for this mode. */
  readonly common: readonly string[];
  readonly postgresql?: readonly string[];
  readonly redis?: readonly string[];
  readonly elasticsearch?: readonly string[];
  /** Said after a refusal, when the reason is not obvious. */
  readonly why?: string;
}

/** Where the bucket is; every action that reads the store out of the cluster's CronJob takes them. */
const STORE = ["--cluster", "--bucket", "--endpoint", "--region"];
/** Server-side encryption applies to every object capsule writes: artifacts and statefile updates alike. */
const SSE = ["--sse", "--sse-kms-key-id"];
const OUTPUT = ["-o"];

const PG_CONNECTION = [
  "--host",
  "--port",
  "--database",
  "--user",
  "--sslmode",
  "--sslrootcert",
  "--insecure-skip-tls-verify",
];
const REDIS_CONNECTION = [
  "--host",
  "--port",
  "--user",
  "--password-env",
  "--tls",
  "--ca-cert",
  "--insecure-skip-tls-verify",
];
const ES_CONNECTION = ["--url", "--ca-cert", "--insecure-skip-tls-verify"];

const IN_CLUSTER = "it runs with the target's own bucket, connection and encryption, from its CronJob";

export const ACCEPTED_FLAGS: Readonly<Record<string, Row>> = {
  create: {
    common: [...STORE, ...SSE, ...OUTPUT, "--encrypt-to", "--target"],
    postgresql: PG_CONNECTION,
    redis: REDIS_CONNECTION,
    elasticsearch: [...ES_CONNECTION, "--indices"],
  },
  list: { common: [...STORE, ...OUTPUT] },
  describe: { common: [...STORE, ...OUTPUT, "--id"] },
  download: { common: [...STORE, "--id", "--to", "--force"], postgresql: ["--raw"] },
  restore: {
    common: [...STORE, ...SSE, ...OUTPUT, "--id", "--yes", "--force"],
    postgresql: [...PG_CONNECTION, "--in-place", "--to-database", "--no-owner"],
    redis: [...REDIS_CONNECTION, "--listen-host", "--listen-port", "--advertise-host", "--detach-replica"],
    elasticsearch: [...ES_CONNECTION, "--indices", "--replace", "--rename-pattern", "--rename-replacement"],
  },
  delete: { common: [...STORE, ...SSE, "--id", "--yes"] },
  prune: {
    common: [
      ...STORE,
      ...SSE,
      ...OUTPUT,
      "--target",
      "--yes",
      "--dry-run",
      "--plans",
      "--keep-last",
      "--keep-daily",
      "--keep-weekly",
      "--keep-monthly",
      "--failed-grace-hours",
    ],
  },
  // PostgreSQL: with connection flags --check also looks for a killed restore's scratch databases on that server.
  check: { common: [...STORE, ...OUTPUT, "--yes"], postgresql: PG_CONNECTION },
  // It talks to the server only: no bucket, no backup id.
  recover: { common: [], redis: REDIS_CONNECTION },
  verify: { common: [...STORE, ...SSE, ...OUTPUT, "--id", "--target"] },
  "verify --verify-server": { common: [], postgresql: PG_CONNECTION },
  "verify --verify-url": { common: [], elasticsearch: ["--insecure-skip-tls-verify"] },
  "create --in-cluster": { common: ["--cluster", "--target", ...OUTPUT], why: IN_CLUSTER },
  "restore --in-cluster": {
    common: ["--cluster", "--target", "--id", "--yes", ...OUTPUT],
    why: IN_CLUSTER,
    postgresql: ["--in-place", "--to-database"],
    elasticsearch: ["--indices", "--replace"],
  },
};

/** Modifier rows extend their action's row (in-cluster rows replace it: nothing of the local path applies). */
const REPLACES_BASE = new Set(["--in-cluster"]);

/**
 * The one line refusing the first flag in `given` that the action does not take for `engine`, or `undefined` when
 * all apply. `given` holds the flags the operator set, in any order, without the action flag itself.
 */
export function refusedFlag(
  engine: EngineName,
  action: Action,
  given: readonly string[],
): string | undefined {
  const modifiers = given.filter((flag) => ACCEPTED_FLAGS[`${action} ${flag}`] !== undefined);
  const accepted = new Set<string>(modifiers);
  if (!modifiers.some((m) => REPLACES_BASE.has(m))) addRow(accepted, ACCEPTED_FLAGS[action], engine);
  for (const modifier of modifiers) addRow(accepted, ACCEPTED_FLAGS[`${action} ${modifier}`], engine);
  const mode = [`--${action}`, ...modifiers].join(" ");
  for (const flag of given) {
    if (accepted.has(flag)) continue;
    const needs = Object.keys(ACCEPTED_FLAGS).find((key) => {
      const [keyAction, modifier] = key.split(" ");
      return (
        keyAction === action &&
        modifier !== undefined &&
        !modifiers.includes(modifier) &&
        rowFlags(ACCEPTED_FLAGS[key], engine).includes(flag)
      );
    });
    if (needs !== undefined) return `${flag} applies to --${action} only with ${needs.split(" ")[1]}`;
    const why = modifiers.map((m) => ACCEPTED_FLAGS[`${action} ${m}`]?.why).find((w) => w !== undefined);
    return `${flag} does not apply to ${mode}${why ? `: ${why}` : ""}`;
  }
  return undefined;
}

function rowFlags(row: Row | undefined, engine: EngineName): readonly string[] {
  return row ? [...row.common, ...(row[engine] ?? [])] : [];
}

function addRow(into: Set<string>, row: Row | undefined, engine: EngineName): void {
  for (const flag of rowFlags(row, engine)) into.add(flag);
}

/** The property clipanion fills for a long flag: `--sse-kms-key-id` is `sseKmsKeyId`. */
export function propertyOf(flag: string): string {
  if (flag === "-o") return "output";
  return flag.replace(/^--/, "").replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Every flag the table names for `engine`, for checking that no declared flag is missing from it. */
export function tableFlags(engine: EngineName): Set<string> {
  const all = new Set<string>();
  for (const row of Object.values(ACCEPTED_FLAGS)) addRow(all, row, engine);
  for (const key of Object.keys(ACCEPTED_FLAGS)) {
    const modifier = key.split(" ")[1];
    if (modifier !== undefined) all.add(modifier);
  }
  return all;
}
