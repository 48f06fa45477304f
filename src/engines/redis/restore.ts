/**
 * Redis restore, online and without file access to the server (docs/design.md §8, docs/adr/0005): verify the artifact's
 * sha256, then serve the RDB as a replication master and point the target at capsule (`REPLICAOF`). The target
 * does a full resync — it drops all its keys and loads the backup's — and capsule waits until the load is done,
 * compares key counts with the fingerprint while the target is still a replica (nothing can expire or be written
 * then, so the comparison is exact), and detaches it (`REPLICAOF NO ONE`).
 *
 * Requirement: the target must reach capsule over TCP (listen/advertise address). On any failure the target's
 * replication settings are put back as they were (a master again, or a replica of its old master).
 *
 * Exactly the old data or exactly the backup's (issue 16 item 4). A replica drops its keys only once it holds the
 * whole RDB: with `repl-diskless-load disabled` (the default) it writes the transfer to a temp file and flushes and
 * loads only when the last byte is in; with `swapdb` it loads into a second keyspace and swaps only on success,
 * restoring the old one when the transfer is cut; `on-empty-db` loads from the socket only into an empty server.
 * Capsule holds back the RDB's last chunk until its sha256 has matched, so an interruption at any point before that
 * leaves the target's own keys, and after it the backup's. On SIGINT/SIGTERM capsule closes its listener (cutting a
 * transfer in progress), waits for a load already under way to finish, puts the settings back and says whose data
 * the target holds, read from its replication id. A SIGKILL leaves the mark of leftover.ts, found by the next
 * `capsule redis` command against the server, and `capsule redis --recover` puts the settings back.
 */
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { CapsuleError, ErrorCode, FieldError, messageOf } from "../../domain/errors.js";
import { redact, registerSecret } from "../../redact.js";
import { failpoint } from "../../util/failpoint.js";
import { throwIfInterrupted } from "../../util/interruption.js";
import type { ArtifactSource } from "../../domain/artifact.js";
import { artifactOf, interruptedWith, mismatchError, throwIfUntouched } from "../restore-guards.js";
import { plaintextSize } from "../../domain/statefile.js";
import { RedisClient } from "./client.js";
import { describeConnection, type RedisConnection } from "./connection.js";
import { compareKeyspaces, type RedisFingerprint } from "./fingerprint.js";
import { maxRdbVersionOf, parseKeyspace, type DbCounts } from "./info.js";
import {
  configValue,
  encodeMark,
  findLeftover,
  heldData,
  leftoverError,
  putBack,
  recoverCommand,
  type RestoreMark,
} from "./leftover.js";
import { ReplicationMaster } from "./replication-master.js";

export interface RedisRestoreOptions {
  /** Address capsule listens on for the target. @default the local address capsule uses to reach the target */
  readonly listenHost?: string;
  /** @default 0 (a free port) */
  readonly listenPort?: number;
  /** Address the target is told to connect to. @default the listen address (or, for a wildcard, the local one) */
  readonly advertiseHost?: string;
  /** Allow a target that is itself a replica: it is detached from its master and left a master. @default false */
  readonly detachReplica?: boolean;
  readonly onPhase?: (phase: string) => void;
  /** How long the target may take to connect after REPLICAOF. @default 30 s */
  readonly connectTimeoutMs?: number;
  /** SIGINT/SIGTERM: stop, put the target back, and throw an InterruptedError saying whose data it holds. */
  readonly signal?: AbortSignal;
}

export interface RedisRestoreOutcome {
  readonly target: string;
  readonly keys: number;
  readonly databases: Record<string, DbCounts>;
  /** Whether the key counts were compared with the backup's fingerprint. */
  readonly checked: boolean;
  readonly bytes: number;
  /** When the target was a replica (and --detach-replica allowed it): its former master. */
  readonly detachedFrom?: string;
}

/** The target's replication settings before capsule touched them. */
interface Previous {
  readonly masterHost?: string;
  readonly masterPort?: number;
  /** undefined when CONFIG is not available (then capsule changes neither masterauth nor masteruser). */
  readonly masterauth?: string;
  /** undefined when CONFIG is not available, or the server has no such setting (Redis < 6). */
  readonly masteruser?: string;
}

const POLL_MS = 200;

export async function restoreRedis(
  conn: RedisConnection,
  source: ArtifactSource,
  options: RedisRestoreOptions = {},
): Promise<RedisRestoreOutcome> {
  const phase = options.onPhase ?? (() => undefined);
  const signal = options.signal;
  const where = describeConnection(conn);
  const artifact = artifactOf(source);
  const fingerprint = source.statefile.fingerprint as RedisFingerprint | undefined;

  // Nothing reaches the target before the whole artifact is known good.
  phase("verifying checksum");
  await source.verify();
  throwIfUntouched(signal, where);

  phase("connecting");
  // A replica flushing a large dataset before it loads the backup answers INFO only when the flush is done.
  const client = await RedisClient.connect(conn, { replyTimeoutMs: 10 * 60_000 });
  try {
    const leftover = await findLeftover(client);
    if (leftover) throw leftoverError(conn, leftover);
    const info = await client.info();
    assertRestorable(where, info, fingerprint, options);
    await assertEnoughDatabases(client, where, fingerprint);
    const previous = await readPrevious(client, info);
    // The target's own masterauth, when it has one, is the listener's password: nothing secret changes on the
    // target, so nothing secret has to be remembered to put it back.
    const tokenSet = previous.masterauth === "";
    const token = tokenSet ? randomBytes(24).toString("hex") : previous.masterauth;
    registerSecret(token);

    const local = client.localAddress ?? "127.0.0.1";
    const listenHost = options.listenHost ?? local;
    const advertiseHost = options.advertiseHost ?? (isWildcard(listenHost) ? local : listenHost);
    const master = await ReplicationMaster.listen({
      host: listenHost,
      port: options.listenPort ?? 0,
      ...(token ? { token } : {}),
      sizeBytes: plaintextSize(artifact),
      open: () => source.open(),
      ...(signal ? { signal } : {}),
    });
    const mark: RestoreMark = {
      replid: master.replid,
      listener: { host: advertiseHost, port: master.port },
      ...(previous.masterHost ? { master: { host: previous.masterHost, port: previous.masterPort! } } : {}),
      masteruser: previous.masteruser ?? "",
      tokenSet,
    };
    let touched = false;
    try {
      throwIfUntouched(signal, where);
      touched = true;
      // The mark first: whatever kills capsule after this line, the next capsule finds what to put back.
      if (previous.masteruser !== undefined)
        await client.call("CONFIG", "SET", "masteruser", encodeMark(mark));
      if (tokenSet) await client.call("CONFIG", "SET", "masterauth", token!);
      phase(`serving the backup to ${where} from ${advertiseHost}:${master.port}`);
      await client.call("REPLICAOF", advertiseHost, String(master.port));
      await waitForLoad(client, master, { host: advertiseHost, port: master.port }, phase, options);

      phase("comparing key counts");
      const databases = parseKeyspace(await client.info("keyspace"));
      const checked = fingerprint?.method === "rdb-scan" && fingerprint.databases !== undefined;
      if (checked) {
        const differences = compareKeyspaces(fingerprint.databases!, databases);
        if (differences.length > 0) throw mismatchError(where, differences);
      }
      await failpoint("redis-restore-before-detach", signal);
      phase("detaching the target (REPLICAOF NO ONE)");
      // Detached, whatever it replicated from before: it holds the backup now (--detach-replica said so).
      await putBack(client, detachedMark(mark), { marked: previous.masteruser !== undefined });
      return {
        target: where,
        keys: Object.values(databases).reduce((sum, d) => sum + d.keys, 0),
        databases,
        checked,
        bytes: master.bytesSent,
        ...(previous.masterHost ? { detachedFrom: `${previous.masterHost}:${previous.masterPort}` } : {}),
      };
    } catch (error) {
      if (!touched) throw error;
      // The listener goes first: closing it cuts a transfer in progress, and the target drops the partial RDB.
      await master.close();
      const after = await putTargetBack(conn, mark, previous, phase);
      const interruption = interruptedWith(signal, redact(`: ${where} ${after}`), error);
      if (interruption) throw interruption;
      throw new CapsuleError(
        error instanceof CapsuleError ? error.code : ErrorCode.DatabaseError,
        redact(`${messageOf(error)}; the target ${after}`),
        { cause: error },
      );
    } finally {
      await master.close();
    }
  } finally {
    client.close();
  }
}

/** The mark without a master to return to: a finished restore leaves the target a master. */
function detachedMark(mark: RestoreMark): RestoreMark {
  return {
    replid: mark.replid,
    listener: mark.listener,
    masteruser: mark.masteruser,
    tokenSet: mark.tokenSet,
  };
}

/** Refuses, before anything changes, a target the restore cannot work on. */
function assertRestorable(
  where: string,
  info: Map<string, string>,
  fingerprint: RedisFingerprint | undefined,
  options: RedisRestoreOptions,
): void {
  if (info.get("cluster_enabled") === "1") {
    throw new CapsuleError(
      ErrorCode.Refused,
      `${where} runs in cluster mode, where REPLICAOF is not available: capsule restores standalone Redis only`,
    );
  }
  if (info.get("role") === "slave" && !options.detachReplica) {
    throw new FieldError(
      ErrorCode.Refused,
      "detachReplica",
      `${where} is a replica of ${info.get("master_host")}:${info.get("master_port")}: restore into its master, ` +
        `or pass {detachReplica} to make it a master holding the backup`,
    );
  }
  const version = info.get("redis_version") ?? "";
  const readable = maxRdbVersionOf(version);
  if (fingerprint?.rdbVersion && readable !== undefined && fingerprint.rdbVersion > readable) {
    throw new CapsuleError(
      ErrorCode.Refused,
      `${where} runs Redis ${version}, which reads RDB versions up to ${readable}; this backup is RDB ` +
        `${fingerprint.rdbVersion} (from Redis ${fingerprint.serverVersion}): restore into Redis ${fingerprint.serverVersion} or newer`,
    );
  }
}

async function assertEnoughDatabases(
  client: RedisClient,
  where: string,
  fingerprint: RedisFingerprint | undefined,
): Promise<void> {
  const highest = Math.max(-1, ...Object.keys(fingerprint?.databases ?? {}).map((db) => Number(db.slice(2))));
  if (highest < 0) return;
  const reply = await client.call("CONFIG", "GET", "databases").catch(() => undefined);
  const databases = Number(configValue(reply) ?? NaN);
  if (Number.isInteger(databases) && highest >= databases) {
    throw new CapsuleError(
      ErrorCode.Refused,
      `${where} has ${databases} databases; the backup has keys in db${highest}: raise "databases" on the target`,
    );
  }
}

async function readPrevious(client: RedisClient, info: Map<string, string>): Promise<Previous> {
  const read = (name: string) =>
    client.call("CONFIG", "GET", name).then(
      (reply) => configValue(reply),
      () => null, // CONFIG renamed away or not permitted: replicas then connect without a token, and no mark
    );
  const masterauth = await read("masterauth");
  const masteruser = masterauth === null ? undefined : await read("masteruser");
  registerSecret(masterauth ?? undefined);
  const wasReplica = info.get("role") === "slave";
  return {
    ...(wasReplica
      ? { masterHost: info.get("master_host"), masterPort: Number(info.get("master_port")) }
      : {}),
    ...(masterauth !== null ? { masterauth: masterauth ?? "" } : {}),
    ...(masteruser !== null && masteruser !== undefined ? { masteruser } : {}),
  };
}

/** Waits until the target has received and loaded the whole RDB and reports its link to capsule up. */
async function waitForLoad(
  client: RedisClient,
  master: ReplicationMaster,
  capsule: { host: string; port: number },
  phase: (phase: string) => void,
  options: RedisRestoreOptions,
): Promise<void> {
  const started = performance.now();
  const connectTimeoutMs = options.connectTimeoutMs ?? 30_000;
  // How long the whole transfer and load may take.
  const timeoutMs = 3_600_000;
  let reported = "";
  for (;;) {
    throwIfInterrupted(options.signal);
    if (master.error) throw master.error;
    const info = await client.info("replication");
    const persistence = await client.info("persistence");
    const loaded =
      master.transferred &&
      info.get("master_host") === capsule.host &&
      info.get("master_port") === String(capsule.port) &&
      info.get("master_link_status") === "up" &&
      info.get("master_sync_in_progress") !== "1" &&
      persistence.get("loading") === "0" &&
      persistence.get("async_loading") !== "1";
    if (loaded) return;
    const elapsed = performance.now() - started;
    if (!master.syncRequested && elapsed > connectTimeoutMs) {
      throw new CapsuleError(
        ErrorCode.DatabaseError,
        `the target did not ${master.connections > 0 ? "complete the replication handshake with" : "connect to"} ` +
          `capsule at ${capsule.host}:${capsule.port} within ${Math.round(connectTimeoutMs / 1000)} s: the target ` +
          `must reach capsule over TCP (set --advertise-host to an address it can reach, --listen-host/--listen-port ` +
          `to match)`,
      );
    }
    if (elapsed > timeoutMs) {
      throw new CapsuleError(
        ErrorCode.DatabaseError,
        `the target did not finish loading the backup within ${Math.round(timeoutMs / 1000)} s ` +
          `(${master.bytesSent} bytes sent)`,
      );
    }
    const now = master.transferred
      ? "waiting for the target to load the backup"
      : master.syncRequested
        ? "sending the backup"
        : "waiting for the target to connect";
    if (now !== reported) phase((reported = now));
    await sleep(POLL_MS, undefined, options.signal ? { signal: options.signal } : {}).catch(() => undefined);
  }
}

/**
 * Puts the target's replication settings back after a failure or an interruption; returns what state it is in now,
 * for the error message: whose data it holds, read from its replication id, not guessed from how far capsule got.
 */
async function putTargetBack(
  conn: RedisConnection,
  mark: RestoreMark,
  previous: Previous,
  phase: (phase: string) => void,
): Promise<string> {
  let client: RedisClient | undefined;
  try {
    client = await RedisClient.connect(conn, { replyTimeoutMs: 10 * 60_000 });
    await putBack(client, mark, {
      marked: previous.masteruser !== undefined,
      onWait: () => phase("waiting for the target to finish loading the backup before detaching it"),
    });
    const held = await heldData(client, mark).catch(() => undefined);
    const role = mark.master
      ? `is a replica of ${mark.master.host}:${mark.master.port} again (it resyncs from it)`
      : "is a master again (REPLICAOF NO ONE)";
    const data =
      held === "backup"
        ? "; it holds the backup's data: it had loaded all of it (key counts not compared)"
        : held === "own"
          ? "; it holds its own data as before: it never received the whole backup"
          : "";
    return `${role} with its replication settings as before${data}`;
  } catch (error) {
    return (
      `could not be put back (${messageOf(error)}): it may still be a read-only replica of capsule; ` +
      `run "${recoverCommand(conn)}"`
    );
  } finally {
    client?.close();
  }
}

function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "";
}
