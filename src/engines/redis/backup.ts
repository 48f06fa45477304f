/**
 * Redis backup: the RDB snapshot over the replication protocol, the way `redis-cli --rdb` takes it — AUTH,
 * `REPLCONF capa eof` (diskless transfer where the server is configured for it), `REPLCONF rdb-only 1` (Redis 7+:
 * no replication stream after the snapshot), `SYNC` — streamed through an RDB check (header, structure, CRC-64)
 * into the store. No temp file, constant memory, nothing written on the server's side but its usual fork.
 */
import type { ArtifactSink, UploadedArtifact } from "../../domain/artifact.js";
import type { EngineBackupResult, EngineContext } from "../engine.js";
import { RedisClient } from "./client.js";
import { describeConnection, type RedisConnection } from "./connection.js";
import { fingerprintOf, type RedisFingerprint } from "./fingerprint.js";
import { findLeftover, leftoverError } from "./leftover.js";
import { RdbVerifier } from "./rdb.js";
import { SyncPayload } from "./sync-payload.js";

export const REDIS_ARTIFACT_NAME = "dump.rdb";
export const REDIS_ARTIFACT_FORMAT = "rdb";

export async function backupRedis(
  conn: RedisConnection,
  sink: ArtifactSink,
  options: Pick<EngineContext, "onPhase" | "signal">,
): Promise<EngineBackupResult> {
  const phase = options.onPhase;
  const where = describeConnection(conn);
  phase("connecting");
  const client = await RedisClient.connect(conn);
  let payload: SyncPayload | undefined;
  const onAbort = () => {
    if (payload) payload.destroy(options.signal.reason as Error);
    else client.close();
  };
  options.signal.addEventListener("abort", onAbort, { once: true });
  try {
    // A target left a replica of capsule by a killed restore serves stale, read-only data: say how to recover it.
    // Only a replica is asked for the mark, so a backup user without CONFIG rights adds nothing to the ACL log.
    if ((await client.info("replication")).get("role") === "slave") {
      const leftover = await findLeftover(client);
      if (leftover) throw leftoverError(conn, leftover);
    }
    const info = await client.info("server");
    const memory = await client.info("memory");
    const serverVersion = info.get("redis_version") ?? "unknown";
    const usedMemory = Number(memory.get("used_memory") ?? 0);
    // Both are optional: an old server without them still sends a full, disk-based snapshot.
    await client.call("REPLCONF", "capa", "eof").catch(() => undefined);
    const rdbOnly = await client.call("REPLCONF", "rdb-only", "1").then(
      () => true,
      () => false,
    );

    phase("streaming snapshot");
    const { socket, buffered } = client.detach();
    socket.write("SYNC\r\n");
    payload = new SyncPayload(socket, buffered, where);
    const verifier = new RdbVerifier();
    let cause: Error | undefined;
    payload.on("error", (error) => {
      cause ??= error;
      verifier.destroy(error);
    });
    verifier.on("error", (error) => (cause ??= error));
    let uploaded: UploadedArtifact;
    try {
      uploaded = await sink.uploadArtifact(REDIS_ARTIFACT_NAME, payload.pipe(verifier), {
        // The RDB is usually smaller than the dataset in memory: a safe estimate for the part size.
        ...(usedMemory > 0 ? { sizeHint: usedMemory } : {}),
      });
    } catch (error) {
      // Prefer the server's or the checker's account over the upload's "stream destroyed".
      throw cause ?? error;
    }
    if (cause) throw cause;
    const summary = verifier.summary;
    return {
      artifact: {
        name: REDIS_ARTIFACT_NAME,
        format: REDIS_ARTIFACT_FORMAT,
        formatVersion: String(summary.version),
        compression: "none",
        ...uploaded,
      },
      fingerprint: fingerprintOf(summary, serverVersion) satisfies RedisFingerprint,
      source: { host: conn.host, port: conn.port, serverVersion, sizeBytes: usedMemory },
      tool: {
        rdbTransfer: payload.form === "eof-mark" ? "diskless" : "disk",
        rdbOnly: String(rdbOnly),
        rdbChecksum: summary.checksum,
      },
    };
  } finally {
    options.signal.removeEventListener("abort", onAbort);
    payload?.destroy();
    client.close();
  }
}
