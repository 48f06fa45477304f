/**
 * The messages of PostgreSQL's streaming replication protocol that travel inside CopyData (the PostgreSQL manual,
 * "Streaming Replication Protocol"): WAL data and keepalives from the server, standby status updates from us, and
 * the rule a physical replication slot's name follows. Pure: bytes in, values out.
 */
import { CapsuleError, ErrorCode } from "../../domain/errors.js";
import type { Lsn } from "../../domain/wal.js";

/** WAL bytes from the server: `data` starts at `start`; `walEnd` is the server's flushed WAL end when it sent them. */
export interface XLogData {
  readonly kind: "wal";
  readonly start: Lsn;
  readonly walEnd: Lsn;
  readonly sentAt: Date;
  readonly data: Buffer;
}

/** The server's heartbeat: how far it has sent, its clock, and whether it wants a status update now. */
export interface PrimaryKeepalive {
  readonly kind: "keepalive";
  readonly walEnd: Lsn;
  readonly sentAt: Date;
  readonly replyRequested: boolean;
}

export type ServerCopyMessage = XLogData | PrimaryKeepalive;

/** PostgreSQL's timestamps count microseconds from 2000-01-01 00:00 UTC. */
const PG_EPOCH_MS = Date.UTC(2000, 0, 1);

export function pgTimestampToDate(microseconds: bigint): Date {
  return new Date(PG_EPOCH_MS + Number(microseconds / 1000n));
}

export function dateToPgTimestamp(date: Date): bigint {
  return BigInt(date.getTime() - PG_EPOCH_MS) * 1000n;
}

const XLOG_DATA_HEADER = 1 + 8 + 8 + 8;
const KEEPALIVE_LENGTH = 1 + 8 + 8 + 1;

/** One CopyData payload from a walsender; anything else is a protocol error worth a clear line. */
export function parseServerCopyMessage(payload: Buffer): ServerCopyMessage {
  const type = payload[0];
  if (type === 0x77 /* 'w' */ && payload.length >= XLOG_DATA_HEADER) {
    return {
      kind: "wal",
      start: payload.readBigUInt64BE(1),
      walEnd: payload.readBigUInt64BE(9),
      sentAt: pgTimestampToDate(payload.readBigInt64BE(17)),
      data: payload.subarray(XLOG_DATA_HEADER),
    };
  }
  if (type === 0x6b /* 'k' */ && payload.length >= KEEPALIVE_LENGTH) {
    return {
      kind: "keepalive",
      walEnd: payload.readBigUInt64BE(1),
      sentAt: pgTimestampToDate(payload.readBigInt64BE(9)),
      replyRequested: payload[17] === 1,
    };
  }
  throw new CapsuleError(
    ErrorCode.DatabaseError,
    `unexpected replication message (type ${type === undefined ? "none" : `0x${type.toString(16)}`}, ${payload.length} bytes)`,
  );
}

/** What a standby tells the server it has: the flush position is what lets the slot release WAL. */
export interface StandbyStatus {
  readonly written: Lsn;
  readonly flushed: Lsn;
  readonly applied: Lsn;
  readonly now: Date;
  readonly replyRequested: boolean;
}

/** The Standby Status Update ('r') as CopyData payload. */
export function encodeStandbyStatus(status: StandbyStatus): Buffer {
  const out = Buffer.alloc(1 + 8 * 4 + 1);
  out[0] = 0x72; // 'r'
  out.writeBigUInt64BE(status.written, 1);
  out.writeBigUInt64BE(status.flushed, 9);
  out.writeBigUInt64BE(status.applied, 17);
  out.writeBigInt64BE(dateToPgTimestamp(status.now), 25);
  out[33] = status.replyRequested ? 1 : 0;
  return out;
}

/** PostgreSQL's rule for replication slot names (ReplicationSlotValidateName). */
export const SLOT_NAME_RULE = "lowercase letters, digits and underscores, at most 63 characters";
const SLOT_NAME = /^[a-z0-9_]{1,63}$/;

export function isSlotName(name: string): boolean {
  return SLOT_NAME.test(name);
}

/**
 * The slot a target streams through when none is named: `capsule_<target>` with every character PostgreSQL does
 * not allow turned into an underscore, cut to 63. Two targets whose names differ only in such characters share a
 * name; `--slot` tells them apart.
 */
export function defaultSlotName(target: string): string {
  return `capsule_${target.toLowerCase().replace(/[^a-z0-9_]/g, "_")}`.slice(0, 63);
}

/** `SHOW wal_segment_size` answers with units (`16MB`); the WAL segment size in bytes. */
export function parseSegmentSize(text: string): number {
  const m = /^(\d+)\s*(B|kB|MB|GB)?$/.exec(text.trim());
  const unit = { B: 1, kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 } as const;
  const bytes = m ? Number(m[1]) * unit[(m[2] ?? "B") as keyof typeof unit] : NaN;
  // A power of two between 1 MiB and 1 GiB, as initdb allows.
  if (!Number.isInteger(bytes) || bytes < 1024 ** 2 || bytes > 1024 ** 3 || (bytes & (bytes - 1)) !== 0) {
    throw new CapsuleError(
      ErrorCode.DatabaseError,
      `the server's wal_segment_size ${JSON.stringify(text)} is not a WAL segment size`,
    );
  }
  return bytes;
}
