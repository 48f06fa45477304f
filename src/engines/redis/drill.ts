/**
 * The Redis restore drill: a throwaway `redis-server` on loopback receives the backup exactly as a production
 * restore would (capsule serves the RDB as a replication master), its key counts are compared with the
 * fingerprint, and the server and its directory are removed, always — also on SIGINT/SIGTERM, which stop the
 * restore and end the drill with an InterruptedError.
 */
import { interruptedWith } from "../restore-guards.js";
import type { ArtifactSource } from "../../domain/artifact.js";
import { freePort, scratchDir, startScratchServer } from "../scratch-server.js";
import { withRedis } from "./client.js";
import type { RedisConnection } from "./connection.js";
import { restoreRedis } from "./restore.js";

export async function drillRedis(
  source: ArtifactSource,
  options: { onPhase?: (phase: string) => void; signal?: AbortSignal } = {},
): Promise<{ method: string; details: string }> {
  const phase = options.onPhase ?? (() => undefined);
  phase("starting a throwaway redis-server");
  const dir = await scratchDir("verify-redis");
  const port = await freePort();
  const conn: RedisConnection = { host: "127.0.0.1", port };
  const server = await startScratchServer({
    command: "redis-server",
    args: [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--save",
      "",
      "--appendonly",
      "no",
      "--databases",
      "64",
    ],
    dir,
    port,
    package: "redis-server",
    ready: () => withRedis(conn, async (client) => (await client.text("PING")) === "PONG"),
  });
  let outcome;
  try {
    outcome = await restoreRedis(conn, source, {
      listenHost: "127.0.0.1",
      ...(options.onPhase ? { onPhase: options.onPhase } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (error) {
    // The finally below stops the server and removes its directory before this error leaves the drill.
    const state =
      ": the restore drill stopped; its throwaway redis-server is stopped and its directory removed; the " +
      "backup's verification is unchanged";
    throw interruptedWith(options.signal, state, error) ?? error;
  } finally {
    await server.stop();
  }
  return {
    method: "restore into a throwaway redis-server over the replication protocol",
    details: `${outcome.keys} keys${outcome.checked ? ", key counts match the fingerprint" : " (no key counts recorded to compare)"}`,
  };
}
