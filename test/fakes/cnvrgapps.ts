/** Builders for CnvrgApp objects in tests (the fields the scanner reads, docs/design.md §3). */
import type { EngineName } from "../../src/domain/backup.js";

const CNVRG_KEY: Record<EngineName, string> = { postgresql: "pg", redis: "redis", elasticsearch: "es" };
const SERVICE: Record<EngineName, [string, number]> = {
  postgresql: ["postgres", 5432],
  redis: ["redis", 6379],
  elasticsearch: ["elasticsearch", 9200],
};

export interface AppOptions {
  /** Engines with backups on. @default ["postgresql"] */
  readonly engines?: readonly EngineName[];
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

/** The values of cnvrg's bucket Secret (`cp-object-storage`, docs/design.md §3) for a bucket on the harness' S3. */
export function cnvrgStorageSecret(
  s3: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string },
  bucket: string,
): Record<string, string> {
  return {
    CNVRG_STORAGE_TYPE: "minio",
    CNVRG_STORAGE_BUCKET: bucket,
    CNVRG_STORAGE_ENDPOINT: s3.endpoint,
    CNVRG_STORAGE_REGION: s3.region,
    CNVRG_STORAGE_ACCESS_KEY: s3.accessKeyId,
    CNVRG_STORAGE_SECRET_KEY: s3.secretAccessKey,
  };
}
