/**
 * Redis restore, online and without file access to the server (DESIGN §8, docs/adr/0005): verify the artifact's
 * sha256, then serve the RDB as a replication master and point the target at capsule (`REPLICAOF`). The target
 * does a full resync — it drops all its keys and loads the backup's — and capsule waits until the load is done,
 * compares key counts with the fingerprint while the target is still a replica (nothing can expire or be written
 * then, so the comparison is exact), and detaches it (`REPLICAOF NO ONE`).
 *
 * Requirement: the target must reach capsule over TCP (listen/advertise address). On any failure the target's
 * replication settings are put back as they were (a master again, or a replica of its old master).
 */
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { CapsuleError, ErrorCode, messageOf } from "../../errors.js";
import { redact, registerSecret } from "../../redact.js";
import type { BackupEntry, BackupStore } from "../../storage/backup-store.js";
import { plaintextSize } from "../../storage/statefile.js";
import { RedisClient, withRedis } from "./client.js";
import { describeConnection, type RedisConnection } from "./connection.js";
import { compareKeyspaces, type RedisFingerprint } from "./fingerprint.js";
import { maxRdbVersionOf, parseKeyspace, type DbCounts } from "./info.js";
import { ReplicationMaster } from "./replication-master.js";
import { replyText, type RespValue } from "./resp.js";

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
  /** How long the whole transfer and load may take. @default 1 h */
  readonly timeoutMs?: number;
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
  /** undefined when CONFIG is not available (then capsule does not change masterauth). */
  readonly masterauth?: string;
}

const POLL_MS = 200;

export async function restoreRedis(
  conn: RedisConnection,
  store: BackupStore,
  entry: BackupEntry,
  options: RedisRestoreOptions = {},
): Promise<RedisRestoreOutcome> {
  const phase = options.onPhase ?? (() => undefined);
  const where = describeConnection(conn);
  const artifact = entry.statefile?.artifact;
  if (!artifact) {
    throw new CapsuleError(
      ErrorCode.NotRestorable,
      `${entry.ref.backupId} has no artifact (state: ${entry.state})`,
    );
  }
  const fingerprint = entry.statefile?.fingerprint as RedisFingerprint | undefined;

  // Nothing reaches the target before the whole artifact is known good.
  phase("verifying checksum");
  await store.verifyArtifact(entry);

  phase("connecting");
  // A replica flushing a large dataset before it loads the backup answers INFO only when the flush is done.
  const client = await RedisClient.connect(conn, { replyTimeoutMs: 10 * 60_000 });
  try {
    const info = await client.info();
    assertRestorable(where, info, fingerprint, options);
    await assertEnoughDatabases(client, where, fingerprint);
    const previous = await readPrevious(client, info);
    const token = previous.masterauth === undefined ? undefined : randomBytes(24).toString("hex");
    registerSecret(token);

    const local = client.localAddress ?? "127.0.0.1";
    const listenHost = options.listenHost ?? local;
    const advertiseHost = options.advertiseHost ?? (isWildcard(listenHost) ? local : listenHost);
    const master = await ReplicationMaster.listen({
      host: listenHost,
      port: options.listenPort ?? 0,
      ...(token ? { token } : {}),
      sizeBytes: plaintextSize(artifact),
      open: () => store.openArtifact(entry),
    });
    try {
      if (token) await client.call("CONFIG", "SET", "masterauth", token);
      phase(`serving the backup to ${where} from ${advertiseHost}:${master.port}`);
      await client.call("REPLICAOF", advertiseHost, String(master.port));
      await waitForLoad(client, master, { host: advertiseHost, port: master.port }, phase, options);

      phase("comparing key counts");
      const databases = parseKeyspace(await client.info("keyspace"));
      const checked = fingerprint?.method === "rdb-scan" && fingerprint.databases !== undefined;
      if (checked) {
        const differences = compareKeyspaces(fingerprint.databases!, databases);
        if (differences.length > 0) {
          throw new CapsuleError(
            ErrorCode.FingerprintMismatch,
            `${where}: restored data does not match the backup: ${differences.slice(0, 5).join("; ")}` +
              (differences.length > 5 ? ` (+${differences.length - 5} more)` : ""),
          );
        }
      }
      phase("detaching the target (REPLICAOF NO ONE)");
      await client.call("REPLICAOF", "NO", "ONE");
      if (token) await client.call("CONFIG", "SET", "masterauth", previous.masterauth ?? "");
      return {
        target: where,
        keys: Object.values(databases).reduce((sum, d) => sum + d.keys, 0),
        databases,
        checked,
        bytes: master.bytesSent,
        ...(previous.masterHost ? { detachedFrom: `${previous.masterHost}:${previous.masterPort}` } : {}),
      };
    } catch (error) {
      const replaced = master.syncRequested;
      const putBack = await restorePrevious(conn, previous, token !== undefined);
      throw new CapsuleError(
        error instanceof CapsuleError ? error.code : ErrorCode.DatabaseError,
        redact(
          `${messageOf(error)}; ${putBack}` +
            (replaced ? "; the target had started a full resync, so its previous keys may be gone" : ""),
        ),
        { cause: error },
      );
    } finally {
      await master.close();
    }
  } finally {
    client.close();
  }
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
    throw new CapsuleError(
      ErrorCode.Refused,
      `${where} is a replica of ${info.get("master_host")}:${info.get("master_port")}: restore into its master, ` +
        `or pass --detach-replica to make it a master holding the backup`,
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
  const masterauth = await client.call("CONFIG", "GET", "masterauth").then(
    (reply) => configValue(reply) ?? "",
    () => undefined, // CONFIG renamed away or not permitted: replicas then connect without a token
  );
  registerSecret(masterauth);
  const wasReplica = info.get("role") === "slave";
  return {
    ...(wasReplica
      ? { masterHost: info.get("master_host"), masterPort: Number(info.get("master_port")) }
      : {}),
    ...(masterauth !== undefined ? { masterauth } : {}),
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
  const started = Date.now();
  const connectTimeoutMs = options.connectTimeoutMs ?? 30_000;
  const timeoutMs = options.timeoutMs ?? 3_600_000;
  let reported = "";
  for (;;) {
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
    const elapsed = Date.now() - started;
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
    await sleep(POLL_MS);
  }
}

/** Puts the target's replication settings back; returns what it did, for the error message. */
async function restorePrevious(
  conn: RedisConnection,
  previous: Previous,
  tokenSet: boolean,
): Promise<string> {
  try {
    await withRedis(conn, async (client) => {
      if (tokenSet) await client.call("CONFIG", "SET", "masterauth", previous.masterauth ?? "");
      if (previous.masterHost)
        await client.call("REPLICAOF", previous.masterHost, String(previous.masterPort));
      else await client.call("REPLICAOF", "NO", "ONE");
    });
    return previous.masterHost
      ? `the target is a replica of ${previous.masterHost}:${previous.masterPort} again`
      : "the target is a master again (REPLICAOF NO ONE)";
  } catch (error) {
    return `could not put the target's replication settings back (${messageOf(error)}): check it with INFO replication`;
  }
}

/** CONFIG GET's reply ([name, value]) → value. */
function configValue(reply: RespValue | undefined): string | undefined {
  if (!Array.isArray(reply) || reply.length < 2) return undefined;
  return replyText(reply[1]!);
}

function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "";
}
