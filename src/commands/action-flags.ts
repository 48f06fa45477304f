/**
 * Which flags each `capsule <engine> --<action>` takes, checked before any I/O, so a flag the chosen action would not
 * honour is refused instead of silently ignored (`--delete --dry-run` once deleted). The rows here are the flags
 * every engine takes; an engine adds its own through the modes of its flags (`EngineFlag.modes`, engines/engine.ts).
 * A flag missing from an action's row is refused for it; `-o` is everyone's but `--download`'s, `--delete`'s and
 * `--recover`'s, which print nothing to stdout.
 */
import type { EngineName } from "../domain/backup.js";
import type { Engine } from "../engines/engine.js";
import { engineNamed } from "../engines/registry.js";
import { flagOf } from "./base-command.js";

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
  /** Only for engines that can put back a server a killed restore left behind (`Engine.recover`). */
  "recover",
  /** Only for engines with a write-ahead log to stream (`Engine.streamWal`). */
  "stream-wal",
] as const;
export type Action = (typeof ACTIONS)[number];

/** The verbs of `engine`, in the order the CLI names them. */
export function actionsOf(engine: Engine): Action[] {
  return ACTIONS.filter(
    (action) =>
      (action !== "recover" || engine.recover !== undefined) &&
      (action !== "stream-wal" || engine.streamWal !== undefined),
  );
}

/**
 * A row of the table, keyed by mode: an action alone, or an action with a modifier flag that changes what it takes
 * (`--create --in-cluster` runs with the target's own bucket and connection; `pg --verify --verify-server` drills
 * on the server the connection flags name).
 */
interface Row {
  /** Flags every engine takes for this mode. */
  readonly common: readonly string[];
  /** Said after a refusal, when the reason is not obvious. */
  readonly why?: string;
}

/** Where the bucket is; every action that reads the store out of the cluster's CronJob takes them. */
const STORE = ["--cluster", "--bucket", "--endpoint", "--region"];
/** Server-side encryption applies to every object capsule writes: artifacts and statefile updates alike. */
const SSE = ["--sse", "--sse-kms-key-id"];
const OUTPUT = ["-o"];

const IN_CLUSTER = "it runs with the target's own bucket, connection and encryption, from its CronJob";

const COMMON: Readonly<Record<string, Row>> = {
  create: { common: [...STORE, ...SSE, ...OUTPUT, "--encrypt-to", "--target"] },
  list: { common: [...STORE, ...OUTPUT] },
  describe: { common: [...STORE, ...OUTPUT, "--id"] },
  download: { common: [...STORE, "--id", "--to", "--force"] },
  restore: { common: [...STORE, ...SSE, ...OUTPUT, "--id", "--yes", "--force"] },
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
  check: { common: [...STORE, ...OUTPUT, "--yes"] },
  // It talks to the server only: no bucket, no backup id.
  recover: { common: [] },
  verify: { common: [...STORE, ...SSE, ...OUTPUT, "--id", "--target"] },
  // It runs until stopped and prints nothing to stdout; the WAL goes under the target, encrypted like its backups.
  "stream-wal": { common: [...STORE, ...SSE, "--encrypt-to", "--target"] },
  "create --in-cluster": { common: ["--cluster", "--target", ...OUTPUT], why: IN_CLUSTER },
  "restore --in-cluster": {
    // The PVC flags are refused by the restore verb unless the engine's --physical is given too.
    common: [
      "--cluster",
      "--target",
      "--id",
      "--yes",
      "--pvc-size",
      "--pvc-name",
      "--storage-class",
      ...OUTPUT,
    ],
    why: IN_CLUSTER,
  },
};

/**
 * Rows of a modifier only some engines declare (pg's `--physical`): added to an engine's modes only when one of its
 * flags names that mode. A point-in-time restore picks its base backup by target, so it takes `--target`.
 */
const ENGINE_MODIFIER_ROWS: Readonly<Record<string, readonly string[]>> = {
  "restore --physical": ["--target"],
};

/** Modifier rows extend their action's row (in-cluster rows replace it: nothing of the local path applies). */
const REPLACES_BASE = new Set(["--in-cluster"]);

interface ModeFlags {
  readonly flags: Set<string>;
  readonly why?: string;
}

/** Every mode of `engine` with the flags it takes: the common rows, plus each engine flag in the modes it names. */
export function modesOf(engine: Engine): Map<string, ModeFlags> {
  const modes = new Map<string, ModeFlags>();
  const mode = (key: string): ModeFlags => {
    const found = modes.get(key) ?? { flags: new Set<string>() };
    modes.set(key, found);
    return found;
  };
  const actions: readonly string[] = actionsOf(engine);
  for (const [key, row] of Object.entries(COMMON)) {
    if (!actions.includes(key.split(" ")[0]!)) continue;
    modes.set(key, { flags: new Set(row.common), ...(row.why ? { why: row.why } : {}) });
  }
  for (const engineFlag of engine.flags) {
    for (const key of engineFlag.modes) mode(key).flags.add(flagOf(engineFlag.field));
    if (engineFlag.modifies !== undefined) mode(`${engineFlag.modifies} ${flagOf(engineFlag.field)}`);
  }
  for (const [key, common] of Object.entries(ENGINE_MODIFIER_ROWS)) {
    if (modes.has(key)) common.forEach((flag) => mode(key).flags.add(flag));
  }
  return modes;
}

/**
 * The one line refusing the first flag in `given` that the action does not take for `engine`, or `undefined` when
 * all apply. `given` holds the flags the operator set, in any order, without the action flag itself.
 */
export function refusedFlag(
  engine: EngineName | Engine,
  action: Action,
  given: readonly string[],
): string | undefined {
  const modes = modesOf(typeof engine === "string" ? engineNamed(engine) : engine);
  const modifiers = given.filter((flag) => modes.has(`${action} ${flag}`));
  const accepted = new Set<string>(modifiers);
  const add = (key: string) => modes.get(key)?.flags.forEach((flag) => accepted.add(flag));
  if (!modifiers.some((m) => REPLACES_BASE.has(m))) add(action);
  for (const modifier of modifiers) add(`${action} ${modifier}`);
  const mode = [`--${action}`, ...modifiers].join(" ");
  for (const flag of given) {
    if (accepted.has(flag)) continue;
    const needs = [...modes]
      .filter(([key, { flags }]) => {
        const [keyAction, modifier] = key.split(" ");
        return (
          keyAction === action && modifier !== undefined && !modifiers.includes(modifier) && flags.has(flag)
        );
      })
      .map(([key]) => key.split(" ")[1]!);
    if (needs.length > 0) return `${flag} applies to --${action} only with ${needs.join(" or ")}`;
    const why = modifiers.map((m) => modes.get(`${action} ${m}`)?.why).find((w) => w !== undefined);
    return `${flag} does not apply to ${mode}${why ? `: ${why}` : ""}`;
  }
  return undefined;
}

/** Every flag an action takes for `engine` in any of its modes, modifiers included: what its command declares. */
export function actionFlags(engine: Engine, action: Action): Set<string> {
  const all = new Set<string>();
  for (const [key, { flags }] of modesOf(engine)) {
    const [keyAction, modifier] = key.split(" ");
    if (keyAction !== action) continue;
    flags.forEach((flag) => all.add(flag));
    if (modifier !== undefined) all.add(modifier);
  }
  return all;
}

/** Every flag the table names for `engine`, for checking that no declared flag is missing from it. */
export function tableFlags(engine: EngineName): Set<string> {
  const all = new Set<string>();
  for (const action of ACTIONS) actionFlags(engineNamed(engine), action).forEach((flag) => all.add(flag));
  return all;
}
