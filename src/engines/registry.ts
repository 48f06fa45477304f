/**
 * Every engine capsule knows, by name: the one place that lists them. Adding an engine is a folder under engines/
 * with its profile (profile.ts, plain data) and its `Engine` (engine.ts), one line here, and its name in
 * domain/backup.ts `ENGINES` (the names a bucket's folders and a statefile may carry; the record below will not
 * compile without the line).
 *
 * The registry holds profiles, so `capsule plan`, the scanner and the compiler load no engine's runtime code; a
 * command loads the engines it needs (`loadEngine`, `loadEngines`) before it asks for one (`engineNamed`).
 */
import { ENGINES, type EngineName } from "../domain/backup.js";
import { elasticsearchProfile } from "./elasticsearch/profile.js";
import type { Engine } from "./engine.js";
import { postgresProfile } from "./postgres/profile.js";
import type { EngineProfile } from "./profile.js";
import { redisProfile } from "./redis/profile.js";

/** Each engine's profile, and how to load its runtime code (only when a command needs it: `loadEngine`). */
const ENGINE_FOLDERS: Readonly<Record<EngineName, { profile: EngineProfile; load: () => Promise<Engine> }>> =
  {
    postgresql: {
      profile: postgresProfile,
      load: async () => (await import("./postgres/engine.js")).postgres,
    },
    redis: { profile: redisProfile, load: async () => (await import("./redis/engine.js")).redis },
    elasticsearch: {
      profile: elasticsearchProfile,
      load: async () => (await import("./elasticsearch/engine.js")).elasticsearch,
    },
  };

export function profileOf(name: EngineName): EngineProfile {
  return ENGINE_FOLDERS[name].profile;
}

/** Every profile, in the order of `ENGINES` (domain/backup.ts), which is the order the CLI lists them. */
export function allProfiles(): readonly EngineProfile[] {
  return ENGINES.map(profileOf);
}

/** The engines that keep a log archive for point-in-time recovery (`pitr`; profile.ts `streamsWal`). */
export function walStreamingEngines(): readonly EngineName[] {
  return allProfiles()
    .filter((profile) => profile.streamsWal)
    .map((profile) => profile.name);
}

/** The engine that answers to a command word (`pg`), if any. */
export function profileForCommand(word: string | undefined): EngineProfile | undefined {
  return allProfiles().find((profile) => profile.command === word);
}

const loaded = new Map<EngineName, Engine>();

/** Loads an engine's runtime code (once); `engineNamed` answers for it from then on. */
export async function loadEngine(name: EngineName): Promise<Engine> {
  const engine = loaded.get(name) ?? (await ENGINE_FOLDERS[name].load());
  loaded.set(name, engine);
  return engine;
}

/** Loads every engine: for the commands that serve them all (`capsule run`, `--help`, `completion`). */
export async function loadEngines(): Promise<readonly Engine[]> {
  return Promise.all(ENGINES.map(loadEngine));
}

/** A loaded engine. Asking for one no command loaded is capsule's own mistake, not the operator's. */
export function engineNamed(name: EngineName): Engine {
  const engine = loaded.get(name);
  if (!engine) throw new Error(`internal: the ${name} engine is used before it is loaded (loadEngine)`);
  return engine;
}

/** Every engine, once `loadEngines` has loaded them, in the order the CLI lists them. */
export function allEngines(): readonly Engine[] {
  return ENGINES.map(engineNamed);
}
