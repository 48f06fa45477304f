/**
 * The S3 key layout, as pure functions (DESIGN §7). Nothing else in capsule builds or parses a key.
 *
 *   <prefix>/<cluster>/<engine>/<backupId>/statefile.json
 *   <prefix>/<cluster>/<engine>/<backupId>/<artifact>
 *   <prefix>/<cluster>/requests/<requestId>.json
 */
import { CapsuleError, ErrorCode } from "../domain/errors.js";
import {
  assertSafeSegment,
  type BackupRef,
  type EngineName,
  isEngine,
  isSafeSegment,
} from "../domain/backup.js";

export const DEFAULT_PREFIX = "capsule";
export const STATEFILE_NAME = "statefile.json";

/** Every key is built from checked segments, so no caller can reach outside its cluster and engine (`../`). */
function segment(value: string, what: string): string {
  assertSafeSegment(value, what);
  return value;
}

function refPath(prefix: string, ref: BackupRef): string {
  return `${prefix}/${segment(ref.cluster, "cluster")}/${engineSegment(ref.engine)}/${segment(ref.backupId, "backup id")}/`;
}

function engineSegment(engine: EngineName): EngineName {
  if (!isEngine(engine)) throw new CapsuleError(ErrorCode.Config, `unknown engine ${JSON.stringify(engine)}`);
  return engine;
}

export const layout = {
  clusterPrefix: (prefix: string, cluster: string) => `${prefix}/${segment(cluster, "cluster")}/`,
  enginePrefix: (prefix: string, cluster: string, engine: EngineName) =>
    `${prefix}/${segment(cluster, "cluster")}/${engineSegment(engine)}/`,
  backupPrefix: (prefix: string, ref: BackupRef) => refPath(prefix, ref),
  statefileKey: (prefix: string, ref: BackupRef) => `${refPath(prefix, ref)}${STATEFILE_NAME}`,
  // The name is a statefile's (its schema allows no "/") or checked where an artifact is written.
  artifactKey: (prefix: string, ref: BackupRef, name: string) => `${refPath(prefix, ref)}${name}`,
  requestsPrefix: (prefix: string, cluster: string) => `${prefix}/${segment(cluster, "cluster")}/requests/`,

  /** The backup a statefile key belongs to, or `undefined` if the key is not a statefile under `prefix`. */
  parseStatefileKey(prefix: string, key: string): BackupRef | undefined {
    if (!key.startsWith(`${prefix}/`)) return undefined;
    const parts = key.slice(prefix.length + 1).split("/");
    if (parts.length !== 4 || parts[3] !== STATEFILE_NAME) return undefined;
    const [cluster, engine, backupId] = parts as [string, string, string];
    if (!isEngine(engine) || !isSafeSegment(cluster) || !isSafeSegment(backupId)) return undefined;
    return { cluster, engine, backupId };
  },

  /** The cluster a key under `prefix` belongs to, if any. */
  clusterOfKey(prefix: string, key: string): string | undefined {
    if (!key.startsWith(`${prefix}/`)) return undefined;
    const cluster = key.slice(prefix.length + 1).split("/")[0];
    return cluster && isSafeSegment(cluster) ? cluster : undefined;
  },
};
