import { connect } from "node:net";
import { join } from "node:path";
import { freePort } from "./ports.js";
import {
  HarnessError,
  keepTempDir,
  makeTempDir,
  removeTempDir,
  requireBinary,
  startDaemon,
  waitFor,
} from "./process.js";

export interface RedisServer {
  host: string;
  port: number;
  dir: string;
  logFile: string;
  stop(): Promise<void>;
}

/** Send one inline command and return the first reply line (e.g. "+PONG"). */
export function redisCommand(host: string, port: number, command: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let data = "";
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`redis ${host}:${port}: no reply`)));
    socket.once("error", reject);
    socket.on("connect", () => socket.write(`${command}\r\n`));
    socket.setEncoding("utf8").on("data", (chunk: string) => {
      data += chunk;
      const end = data.indexOf("\r\n");
      if (end >= 0) {
        socket.end();
        resolve(data.slice(0, end));
      }
    });
  });
}

/** A throwaway redis-server on 127.0.0.1 (no password, no persistence). */
export async function startRedis(): Promise<RedisServer> {
  const bin = requireBinary("redis-server", "redis-server");
  const dir = makeTempDir("capsule-redis-");
  const logFile = join(dir, "redis.log");
  const host = "127.0.0.1";
  const port = await freePort();
  const options = {
    port: String(port),
    bind: host,
    dir,
    save: "",
    appendonly: "no",
    daemonize: "no",
    "protected-mode": "no",
  };
  const daemon = startDaemon(
    bin,
    Object.entries(options).flatMap(([k, v]) => [`--${k}`, v]),
    { name: "redis-server", logFile, cwd: dir },
  );
  try {
    await waitFor(
      `redis-server on ${host}:${port}`,
      async () => (await redisCommand(host, port, "PING")) === "+PONG",
      {
        timeoutMs: 15_000,
        intervalMs: 50,
        daemons: [daemon],
      },
    );
  } catch (err) {
    await daemon.stop();
    keepTempDir(dir);
    throw new HarnessError(`redis-server failed to start (files in ${dir}): ${(err as Error).message}`, {
      logFiles: [logFile],
      cause: err,
    });
  }
  return {
    host,
    port,
    dir,
    logFile,
    stop: async () => {
      await daemon.stop();
      await removeTempDir(dir);
    },
  };
}
