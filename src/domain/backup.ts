/**
 * What a backup is called, everywhere: the engines capsule knows, a backup's reference and id, and the rule every
 * name that becomes part of an object key must pass.
 */
import { CapsuleError, ErrorCode } from "./errors.js";

export const ENGINES = ["postgresql", "redis", "elasticsearch"] as const;
export type EngineName = (typeof ENGINES)[number];

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

export function isEngine(value: string): value is EngineName {
  return (ENGINES as readonly string[]).includes(value);
}

export interface BackupRef {
  readonly cluster: string;
  readonly engine: EngineName;
  readonly backupId: string;
}

/** `<engine>-<UTC yyyymmddThhmmssZ>-<6 hex>`: sorts by time within an engine, unique without coordination. */
export function newBackupId(engine: EngineName, now: Date = new Date(), random: string = randomHex(3)) {
  return `${engine}-${compactStamp(now)}-${random}`;
}

/** `20261205T183000Z`: the UTC second in the form backup and request ids carry. */
export function compactStamp(now: Date): string {
  return now
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}Z$/, "Z");
}

/** The ISO time a backup id was minted at ("" if the id does not carry one): sorts like `startedAt`. */
export function backupIdTime(backupId: string): string {
  const m = /-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-[0-9a-f]+$/.exec(backupId);
  return m ? `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.000Z` : "";
}

/** Web Crypto's global, so this module needs no import to mint an id. */
function randomHex(bytes: number): string {
  return Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(bytes))).toString("hex");
}
