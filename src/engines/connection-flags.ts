/**
 * The connection flags engines share, worded once from each engine's own words (its variables, its defaults, what
 * it calls its server), so that a flag reads alike in every engine's `--help` and its defaults are the ones the
 * connection uses (connection-fields.ts `ServerDefaults`).
 */
import type { ServerDefaults } from "./connection-fields.js";
import type { EngineFlag } from "./engine.js";

type ConnectionFlag = Omit<EngineFlag, "modes">;

export function serverFlags(defaults: ServerDefaults): ConnectionFlag[] {
  const { hostEnv, host, portEnv, port } = defaults;
  return [
    { field: "host", kind: "string", description: `Server host (default: $${hostEnv}, else ${host})` },
    { field: "port", kind: "string", description: `Server port (default: $${portEnv}, else ${port})` },
  ];
}

/** The PEM file of the CA that signed the certificate of the engine's `server` (`server`, `cluster`). */
export function caFileFlag(field: string, server: string, note = ""): ConnectionFlag {
  return {
    field,
    kind: "string",
    description: `PEM file with the CA that signed the ${server}'s certificate${note}`,
  };
}
