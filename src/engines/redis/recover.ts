/**
 * `capsule redis --recover`: puts back a target that a killed restore left a read-only replica of capsule's vanished
 * listener, from the mark the restore wrote on the target (leftover.ts). Refuses while that restore is still running.
 */
import { CapsuleError, ErrorCode } from "../../domain/errors.js";
import { withRedis } from "./client.js";
import { describeConnection, type RedisConnection } from "./connection.js";
import { findLeftover, heldData, leftoverError, putBack } from "./leftover.js";

/** Resolves with one line saying what the target is now and whose data it holds. */
export async function recoverRedis(
  conn: RedisConnection,
  options: { onPhase?: (phase: string) => void } = {},
): Promise<string> {
  const where = describeConnection(conn);
  return withRedis(conn, async (client) => {
    const leftover = await findLeftover(client);
    if (!leftover) {
      const info = await client.info("replication");
      const role =
        info.get("role") === "slave"
          ? `a replica of ${info.get("master_host")}:${info.get("master_port")}`
          : "a master";
      throw new CapsuleError(
        ErrorCode.NotFound,
        `${where} carries no mark of an interrupted capsule restore (it is ${role}): nothing to recover`,
      );
    }
    if (leftover.running) throw leftoverError(conn, leftover);
    const { mark } = leftover;
    await putBack(client, mark, {
      onWait: () => options.onPhase?.("waiting for the target to finish loading before detaching it"),
    });
    const held = await heldData(client, mark);
    return (
      `recovered ${where}: ` +
      (mark.master
        ? `a replica of ${mark.master.host}:${mark.master.port} again (it resyncs from it)`
        : "a master again (REPLICAOF NO ONE), writable") +
      ", masterauth and masteruser as before" +
      (held === "backup"
        ? "; it holds the backup's data: it had loaded all of it before the restore was killed (key counts not " +
          "compared: restore again to have them checked)"
        : held === "own"
          ? "; it holds its own data: the killed restore never delivered the whole backup"
          : "")
    );
  });
}
