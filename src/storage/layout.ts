/**
 * The S3 key layout, as pure functions (DESIGN §7). Nothing else in capsule builds or parses a key.
 *
 *   <prefix>/<cluster>/<engine>/<backupId>/statefile.json
 *   <prefix>/<cluster>/<engine>/<backupId>/<artifact>
 *   <prefix>/<cluster>/requests/<requestId>.json
 */
import { randomBytes } from "node:crypto";
import { CapsuleError, ErrorCode } from "../errors.js";

export const DEFAULT_PREFIX = "capsule";
export const STATEFILE_NAME = "statefile.json";

export const ENGINES = ["postgresql", "redis", "elasticsearch"] as const;
export type Engine = (typeof ENGINES)[number];

/** A key segment capsule writes: no slashes, no dot-only names, nothing a shell or URL would mangle. */
const SAFE_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

export function isSafeSegment(value: string): boolean {
  return SAFE_SEGMENT.test(value) && !value.includes("..");
}

/** What a safe segment is, for messages that refuse one. */
export const SAFE_SEGMENT_RULE = 'use letters, digits, ".", "_" and "-", starting with a letter or digit';

export function assertSafeSegment(value: string, what: string): void {
  if (!isSafeSegment(value)) {
    throw new CapsuleError(
      ErrorCode.Config,
      `${what} ${JSON.stringify(value)} is not safe for object keys (letters, digits, ".", "_", "-"; starts with a letter or digit)`,
    );
  }
}

/** Every key is built from checked segments, so no caller can reach outside its cluster and engine (`../`). */
function segment(value: string, what: string): string {
  assertSafeSegment(value, what);
  return value;
}

function refPath(prefix: string, ref: BackupRef): string {
  return `${prefix}/${segment(ref.cluster, "cluster")}/${engineSegment(ref.engine)}/${segment(ref.backupId, "backup id")}/`;
}

function engineSegment(engine: Engine): Engine {
  if (!isEngine(engine)) throw new CapsuleError(ErrorCode.Config, `unknown engine ${JSON.stringify(engine)}`);
  return engine;
}

export function isEngine(value: string): value is Engine {
  return (ENGINES as readonly string[]).includes(value);
}

export interface BackupRef {
  readonly cluster: string;
  readonly engine: Engine;
  readonly backupId: string;
}

export const layout = {
  clusterPrefix: (prefix: string, cluster: string) => `${prefix}/${segment(cluster, "cluster")}/`,
  enginePrefix: (prefix: string, cluster: string, engine: Engine) =>
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

/** `<engine>-<UTC yyyymmddThhmmssZ>-<6 hex>`: sorts by time within an engine, unique without coordination. */
export function newBackupId(
  engine: Engine,
  now: Date = new Date(),
  random: string = randomBytes(3).toString("hex"),
) {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}Z$/, "Z");
  return `${engine}-${stamp}-${random}`;
}

/** The ISO time a backup id was minted at ("" if the id does not carry one): sorts like `startedAt`. */
export function backupIdTime(backupId: string): string {
  const m = /-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-[0-9a-f]+$/.exec(backupId);
  return m ? `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.000Z` : "";
}
