/**
 * Every engine's profile (profile.ts), by name: what `capsule plan` needs, without the engines' runtime code that
 * the registry (registry.ts) loads. Adding an engine adds one line here beside its line there.
 */
import { ENGINES, type EngineName } from "../domain/backup.js";
import { elasticsearchProfile } from "./elasticsearch/profile.js";
import { postgresProfile } from "./postgres/profile.js";
import type { EngineProfile } from "./profile.js";
import { redisProfile } from "./redis/profile.js";

const PROFILES: Readonly<Record<EngineName, EngineProfile>> = {
  postgresql: postgresProfile,
  redis: redisProfile,
  elasticsearch: elasticsearchProfile,
};

export function profileOf(name: EngineName): EngineProfile {
  return PROFILES[name];
}

/** Every profile, in the order of `ENGINES` (domain/backup.ts). */
export function allProfiles(): readonly EngineProfile[] {
  return ENGINES.map(profileOf);
}
