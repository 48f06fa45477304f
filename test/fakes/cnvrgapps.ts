/** Builders for CnvrgApp objects in tests (the fields the scanner reads, DESIGN §3). */
import type { Engine } from "../../src/storage/layout.js";

const CNVRG_KEY: Record<Engine, string> = { postgresql: "pg", redis: "redis", elasticsearch: "es" };
const SERVICE: Record<Engine, [string, number]> = {
  postgresql: ["postgres", 5432],
  redis: ["redis", 6379],
  elasticsearch: ["elasticsearch", 9200],
};

export interface AppOptions {
  /** Engines with backups on. @default ["postgresql"] */
  readonly engines?: readonly Engine[];
  /** Backup period of every engine (any value, so broken ones can be built). @default "24h" */
  readonly period?: unknown;
  readonly rotation?: unknown;
}

export function cnvrgApp(namespace: string, name: string, options: AppOptions = {}): Record<string, unknown> {
  const dbs: Record<string, unknown> = {};
  for (const engine of options.engines ?? ["postgresql"]) {
    const [svcName, port] = SERVICE[engine];
    dbs[CNVRG_KEY[engine]] = {
      enabled: true,
      svcName,
      port,
      backup: {
        enabled: true,
        period: options.period ?? "24h",
        ...(options.rotation !== undefined && { rotation: options.rotation }),
      },
    };
  }
  return { apiVersion: "mlops.cnvrg.io/v1", kind: "CnvrgApp", metadata: { namespace, name }, spec: { dbs } };
}
