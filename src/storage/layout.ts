/**
 * The S3 key layout, as pure functions (docs/design.md §7). Nothing else in capsule builds or parses a key.
 *
 *   <prefix>/<cluster>/<engine>/<backupId>/statefile.json
 *   <prefix>/<cluster>/<engine>/<backupId>/<artifact>
 *   <prefix>/<cluster>/<engine>/catalog.json.gz          (a cache of the statefiles: docs/adr/0020)
 *   <prefix>/<cluster>/requests/<requestId>.json
 *   <prefix>/<cluster>/requests/<requestId>.outcome.json
 *   <prefix>/<cluster>/wal/<target>/<walFile>.zst[.age]           (a complete WAL segment: docs/adr/0021)
 *   <prefix>/<cluster>/wal/<target>/<walFile>.partial.zst[.age]   (the segment being written, zero-padded)
 *   <prefix>/<cluster>/wal/<target>/<timeline>.history            (a timeline's history file, as PostgreSQL wrote it)
 *   <prefix>/<cluster>/wal/<target>/head.json                     (where the stream stands)
 *
 * WAL sits beside the engine folders, not in one: listing backups never pages through thousands of segments.
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
export const REQUEST_SUFFIX = ".json";
export const OUTCOME_SUFFIX = ".outcome.json";
/** Beside the backup folders, not in one: no listing of a backup folder, and no integrity sweep, ever sees it. */
export const CATALOG_NAME = "catalog.json.gz";
export const WAL_HEAD_NAME = "head.json";

/** What a key under a target's WAL folder is. */
export type WalKey =
  | { kind: "segment"; walFile: string; partial: boolean; encrypted: boolean }
  | { kind: "history"; historyFile: string }
  | { kind: "head" };

const WAL_SEGMENT_KEY = /^([0-9A-F]{24})(\.partial)?\.zst(\.age)?$/;
const WAL_HISTORY_KEY = /^[0-9A-F]{8}\.history$/;

/** Every key is built from checked segments, so no caller can reach outside its cluster and engine (`../`). */
function segment(value: string, what: string): string {
  assertSafeSegment(value, what);
  return value;
}

function refPath(prefix: string, ref: BackupRef): string {
  return `${prefix}/${segment(ref.cluster, "cluster")}/${engineSegment(ref.engine)}/${segment(ref.backupId, "backup id")}/`;
}

function walName(walFile: string): string {
  if (!/^[0-9A-F]{24}$/.test(walFile))
    throw new CapsuleError(ErrorCode.Config, `${JSON.stringify(walFile)} is not a WAL file name`);
  return walFile;
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
  catalogKey: (prefix: string, cluster: string, engine: EngineName) =>
    `${layout.enginePrefix(prefix, cluster, engine)}${CATALOG_NAME}`,
  statefileKey: (prefix: string, ref: BackupRef) => `${refPath(prefix, ref)}${STATEFILE_NAME}`,
  // The name is a statefile's (its schema allows no "/") or checked where an artifact is written.
  artifactKey: (prefix: string, ref: BackupRef, name: string) => `${refPath(prefix, ref)}${name}`,
  requestsPrefix: (prefix: string, cluster: string) => `${prefix}/${segment(cluster, "cluster")}/requests/`,
  requestKey: (prefix: string, cluster: string, id: string) =>
    `${layout.requestsPrefix(prefix, cluster)}${segment(id, "request id")}${REQUEST_SUFFIX}`,
  outcomeKey: (prefix: string, cluster: string, id: string) =>
    `${layout.requestsPrefix(prefix, cluster)}${segment(id, "request id")}${OUTCOME_SUFFIX}`,

  walPrefix: (prefix: string, cluster: string, target: string) =>
    `${prefix}/${segment(cluster, "cluster")}/wal/${segment(target, "target")}/`,
  walSegmentKey: (
    prefix: string,
    cluster: string,
    target: string,
    walFile: string,
    options: { partial: boolean; encrypted: boolean },
  ) =>
    `${layout.walPrefix(prefix, cluster, target)}${walName(walFile)}${options.partial ? ".partial" : ""}.zst${options.encrypted ? ".age" : ""}`,
  walHistoryKey: (prefix: string, cluster: string, target: string, historyFile: string) => {
    if (!WAL_HISTORY_KEY.test(historyFile))
      throw new CapsuleError(ErrorCode.Config, `${JSON.stringify(historyFile)} is not a history file name`);
    return `${layout.walPrefix(prefix, cluster, target)}${historyFile}`;
  },
  walHeadKey: (prefix: string, cluster: string, target: string) =>
    `${layout.walPrefix(prefix, cluster, target)}${WAL_HEAD_NAME}`,

  /** What a key under the target's WAL folder is; undefined for anything capsule did not write there. */
  parseWalKey(prefix: string, cluster: string, target: string, key: string): WalKey | undefined {
    const folder = layout.walPrefix(prefix, cluster, target);
    if (!key.startsWith(folder)) return undefined;
    const name = key.slice(folder.length);
    if (name === WAL_HEAD_NAME) return { kind: "head" };
    if (WAL_HISTORY_KEY.test(name)) return { kind: "history", historyFile: name };
    const m = WAL_SEGMENT_KEY.exec(name);
    return m
      ? { kind: "segment", walFile: m[1]!, partial: m[2] !== undefined, encrypted: m[3] !== undefined }
      : undefined;
  },

  /** The request id of a key under the requests prefix, and whether it is the outcome; undefined for other keys. */
  parseRequestKey(
    prefix: string,
    cluster: string,
    key: string,
  ): { id: string; outcome: boolean } | undefined {
    const folder = layout.requestsPrefix(prefix, cluster);
    if (!key.startsWith(folder)) return undefined;
    const name = key.slice(folder.length);
    const outcome = name.endsWith(OUTCOME_SUFFIX);
    if (!outcome && !name.endsWith(REQUEST_SUFFIX)) return undefined;
    const id = name.slice(0, name.length - (outcome ? OUTCOME_SUFFIX : REQUEST_SUFFIX).length);
    return isSafeSegment(id) ? { id, outcome } : undefined;
  },

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
