/**
 * Every engine capsule knows, by name. The one place that lists them: adding an engine is a folder under engines/
 * that implements `Engine` (engine.ts) and one line here.
 */
import type { EngineName } from "../domain/backup.js";
import type { Engine } from "./engine.js";
import { elasticsearch } from "./elasticsearch/engine.js";
import { postgres } from "./postgres/engine.js";
import { redis } from "./redis/engine.js";

const ENGINES: Readonly<Record<EngineName, Engine>> = {
  postgresql: postgres,
  redis: redis,
  elasticsearch: elasticsearch,
};

export function engineNamed(name: EngineName): Engine {
  return ENGINES[name];
}

/** Every engine, in the order the CLI lists them. */
export function allEngines(): readonly Engine[] {
  return Object.values(ENGINES);
}
