/**
 * What an online restore leaves on the target until it has put it back, and how a later capsule finds it
 * (docs/adr/0005, issue 16 item 4). A restore that is killed (SIGKILL, OOM, a lost node) cannot clean up: the target
 * stays a read-only replica of capsule's vanished listener. So before it changes anything, the restore writes a mark
 * where only the target itself holds it — its `masteruser` setting, which a replica sends only to its own master — as
 * `capsule-restore:<base64url JSON>` with the settings to put back. The mark holds no secret: capsule changes
 * `masterauth` only when it was empty (so putting it back means emptying it), and otherwise reuses the target's own
 * masterauth as its listener's password. Nothing about the target is ever stored in the bucket.
 *
 * `masteruser` is runtime configuration: a Redis restart drops it together with the REPLICAOF it explains, and what
 * comes up is the server's own data as a master — nothing left to recover.
 */
import { connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { CapsuleError, ErrorCode, messageOf } from "../../domain/errors.js";
import type { RedisClient } from "./client.js";
import { describeConnection, type RedisConnection } from "./connection.js";
import { replyText, type RespValue } from "./resp.js";

const MARK_PREFIX = "capsule-restore:";

/** The settings a restore found on the target, to put back; plus how to tell whose data the target holds. */
export interface RestoreMark {
  /** The replication id capsule's listener announced: a target that loaded the backup took it over. */
  readonly replid: string;
  /** The address the target was told to replicate from (capsule's listener). */
  readonly listener: { readonly host: string; readonly port: number };
  /** Its master before the restore; absent when it was a master. */
  readonly master?: { readonly host: string; readonly port: number };
  /** Its `masteruser` before the restore ("" for none). */
  readonly masteruser: string;
  /** Capsule set a one-time `masterauth` because there was none: putting it back empties it. */
  readonly tokenSet: boolean;
}

export function encodeMark(mark: RestoreMark): string {
  return MARK_PREFIX + Buffer.from(JSON.stringify(mark)).toString("base64url");
}

/** The mark in a `masteruser` value, or undefined when the value is not one of capsule's. */
export function decodeMark(masteruser: string | undefined): RestoreMark | undefined {
  if (!masteruser?.startsWith(MARK_PREFIX)) return undefined;
  try {
    const mark = JSON.parse(
      Buffer.from(masteruser.slice(MARK_PREFIX.length), "base64url").toString("utf8"),
    ) as Partial<RestoreMark>;
    const valid =
      typeof mark.replid === "string" &&
      typeof mark.listener?.host === "string" &&
      typeof mark.listener.port === "number" &&
      typeof mark.masteruser === "string" &&
      typeof mark.tokenSet === "boolean";
    return valid ? (mark as RestoreMark) : undefined;
  } catch {
    return undefined;
  }
}

/** CONFIG GET's reply ([name, value]) → value; undefined when the setting does not exist. */
export function configValue(reply: RespValue | undefined): string | undefined {
  if (!Array.isArray(reply) || reply.length < 2) return undefined;
  return replyText(reply[1]!);
}

/** A restore's mark on the target, and whether the restore that wrote it is still serving. */
export interface Leftover {
  readonly mark: RestoreMark;
  /** The target still replicates from capsule's listener (else only its settings were left half put back). */
  readonly following: boolean;
  /** It follows the listener and the listener still answers: a restore is running. */
  readonly running: boolean;
}

/** Reads the mark (undefined without one, or when CONFIG is not permitted: then no restore could have set one). */
export async function findLeftover(client: RedisClient): Promise<Leftover | undefined> {
  const reply = await client.call("CONFIG", "GET", "masteruser").catch(() => undefined);
  const mark = decodeMark(configValue(reply));
  if (!mark) return undefined;
  const info = await client.info("replication");
  const following =
    info.get("role") === "slave" &&
    info.get("master_host") === mark.listener.host &&
    info.get("master_port") === String(mark.listener.port);
  const running = following && (info.get("master_link_status") === "up" || (await answers(mark.listener)));
  return { mark, following, running };
}

/** The one line that says how to recover a target a killed restore left behind (or refuses one in use). */
export function leftoverError(conn: RedisConnection, leftover: Leftover): CapsuleError {
  const where = describeConnection(conn);
  const listener = `${leftover.mark.listener.host}:${leftover.mark.listener.port}`;
  if (leftover.running) {
    return new CapsuleError(
      ErrorCode.Refused,
      `${where} is receiving a capsule restore from ${listener}: wait until it ends (SIGINT stops it and puts the ` +
        `target back)`,
    );
  }
  const left = leftover.following
    ? `was left a read-only replica of capsule's listener at ${listener}`
    : "still carries the replication settings capsule set";
  return new CapsuleError(
    ErrorCode.Refused,
    `${where} ${left} by a restore that was killed before it could put the target back: ` +
      `run "${recoverCommand(conn)}" to make it ` +
      `${leftover.mark.master ? `a replica of ${leftover.mark.master.host}:${leftover.mark.master.port}` : "a master"} ` +
      `again with its replication settings as before`,
  );
}

/** The `capsule redis --recover` command line for a connection; the password stays in the environment. */
export function recoverCommand(conn: RedisConnection): string {
  return [
    "capsule redis --recover",
    `--host ${conn.host}`,
    `--port ${conn.port}`,
    ...(conn.user ? [`--user ${conn.user}`] : []),
    ...(conn.tls ? ["--tls"] : []),
  ].join(" ");
}

/** How long a target may take to finish loading a backup it received whole before it can be detached. */
const LOADING_WAIT_MS = 15 * 60_000;

/**
 * Puts the target's replication settings back as the mark says, the mark itself last, so that a put-back cut short
 * can be run again. A target still loading a backup it received whole refuses REPLICAOF (LOADING) until it is done.
 */
export async function putBack(
  client: RedisClient,
  mark: RestoreMark,
  options: { onWait?: () => void; marked?: boolean } = {},
): Promise<void> {
  const deadline = performance.now() + LOADING_WAIT_MS;
  for (let waited = false; ;) {
    try {
      if (mark.master) await client.call("REPLICAOF", mark.master.host, String(mark.master.port));
      else await client.call("REPLICAOF", "NO", "ONE");
      break;
    } catch (error) {
      if (!/\bLOADING\b/.test(messageOf(error)) || performance.now() > deadline) throw error;
      if (!waited) options.onWait?.();
      waited = true;
      await sleep(200);
    }
  }
  if (mark.tokenSet) await client.call("CONFIG", "SET", "masterauth", "");
  // Unmarked (no CONFIG, or Redis < 6 without masteruser): there is nothing more to put back.
  if (options.marked ?? true) await client.call("CONFIG", "SET", "masteruser", mark.masteruser);
}

/**
 * Whose data the target holds once it is put back: a server that loaded capsule's RDB took over the listener's
 * replication id, and keeps it as `master_replid2` when it is detached (REPLICAOF NO ONE shifts the id).
 * undefined when it cannot tell (it follows its old master again, which resyncs it).
 */
export async function heldData(
  client: RedisClient,
  mark: RestoreMark,
): Promise<"backup" | "own" | undefined> {
  if (mark.master) return undefined;
  const info = await client.info("replication");
  return info.get("master_replid") === mark.replid || info.get("master_replid2") === mark.replid
    ? "backup"
    : "own";
}

/** Whether something accepts a TCP connection at the listener's address (a running restore's listener). */
function answers(listener: { host: string; port: number }): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: listener.host, port: listener.port });
    const done = (result: boolean) => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(2000, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}
