/**
 * Redis helpers for tests: throwaway servers beside the harness' shared one (restore targets, password-protected
 * sources), data of every type, a per-key dump for comparing two servers, and a fake master that misbehaves on
 * purpose (truncated or corrupt snapshots) — the only way to make a real server send a bad payload.
 */
import { createServer, type Server, type Socket } from "node:net";
import { RedisClient } from "../../src/engines/redis/client.js";
import type { RedisConnection } from "../../src/engines/redis/connection.js";
import { Crc64 } from "../../src/engines/redis/crc64.js";
import { RespReader, replyText, type RespValue } from "../../src/engines/redis/resp.js";
import { startRedis, type RedisServer } from "../harness/redis.js";

export interface RedisEndpoint {
  host: string;
  port: number;
  password?: string;
  user?: string;
}

/** A second, throwaway redis-server (so restores never wipe the shared one), configured with CONFIG SET. */
export async function startTargetRedis(config: Record<string, string> = {}): Promise<RedisServer> {
  const server = await startRedis();
  // Backups from these servers need not wait the default 5 s for more replicas.
  await call({ host: server.host, port: server.port }, "CONFIG", "SET", "repl-diskless-sync-delay", "0");
  for (const [key, value] of Object.entries(config)) {
    // requirepass last: after it, this connection-less helper would need the password.
    if (key !== "requirepass")
      await call({ host: server.host, port: server.port }, "CONFIG", "SET", key, value);
  }
  if (config["requirepass"]) {
    await call(
      { host: server.host, port: server.port },
      "CONFIG",
      "SET",
      "requirepass",
      config["requirepass"],
    );
  }
  return server;
}

function connection(server: RedisEndpoint): RedisConnection {
  return {
    host: server.host,
    port: server.port,
    ...(server.user ? { user: server.user } : {}),
    ...(server.password ? { password: server.password } : {}),
  };
}

/** Runs commands on one connection (so SELECT carries over) and returns their replies. */
export async function session<T>(
  server: RedisEndpoint,
  work: (client: RedisClient) => Promise<T>,
): Promise<T> {
  const client = await RedisClient.connect(connection(server));
  try {
    return await work(client);
  } finally {
    client.close();
  }
}

export function call(server: RedisEndpoint, ...args: Array<string | Buffer>): Promise<RespValue> {
  return session(server, (c) => c.call(...args));
}

/** A command whose reply is read as text (INFO, GET…). */
export async function text(server: RedisEndpoint, ...args: Array<string | Buffer>): Promise<string> {
  return replyText(await call(server, ...args));
}

/** The environment `capsule redis` reads for a server. */
export function redisEnv(server: RedisEndpoint): Record<string, string> {
  return {
    REDIS_HOST: server.host,
    REDIS_PORT: String(server.port),
    ...(server.password ? { REDISCLI_AUTH: server.password } : {}),
  };
}

/**
 * Every data type in databases 0..3: strings (text, integer, binary key and value, a large one), hashes, lists,
 * sets (intset and hashtable), sorted sets (small and skiplist), a stream with consumer groups and pending
 * entries, a HyperLogLog, a bitmap; some keys with TTLs. Returns the keys (and keys with a TTL) written per database.
 */
export async function fillEveryType(
  server: RedisEndpoint,
): Promise<Record<string, { keys: number; expires: number }>> {
  const binary = Buffer.from([0x00, 0xff, 0x0d, 0x0a, 0x24, 0x2a, 0x80, 0xfe, 0x01]);
  return session(server, async (c) => {
    const counts: Record<string, { keys: number; expires: number }> = {};
    for (let db = 0; db < 4; db++) {
      await c.call("SELECT", String(db));
      const p = `db${db}:`;
      await c.call("SET", `${p}string`, `hello from db ${db}`);
      await c.call("SET", `${p}int`, "12345");
      await c.call("SET", Buffer.concat([Buffer.from(p), binary]), Buffer.concat([binary, binary]));
      await c.call("SET", `${p}large`, "x".repeat(100_000 + db));
      await c.call("HSET", `${p}hash`, "a", "1", "b", "2", Buffer.from([0xc3, 0x28]), binary);
      await c.call(
        "HSET",
        `${p}bighash`,
        ...Array.from({ length: 300 }, (_, i) => [`f${i}`, `v${i}`]).flat(),
      );
      await c.call("RPUSH", `${p}list`, "one", "two", binary, "four");
      await c.call("SADD", `${p}intset`, "1", "2", "3", "100000");
      await c.call("SADD", `${p}set`, ...Array.from({ length: 200 }, (_, i) => `member-${i}`));
      await c.call("ZADD", `${p}zset`, "1", "a", "2.5", "b", "-3", binary);
      await c.call(
        "ZADD",
        `${p}bigzset`,
        ...Array.from({ length: 200 }, (_, i) => [String(i / 7), `m${i}`]).flat(),
      );
      await c.call("XADD", `${p}stream`, "1-1", "field", "value", "bin", binary);
      await c.call("XADD", `${p}stream`, "2-1", "field", "value2");
      await c.call("XADD", `${p}stream`, "3-1", "field", "value3");
      await c.call("XGROUP", "CREATE", `${p}stream`, "group-a", "0");
      await c.call("XGROUP", "CREATE", `${p}stream`, "group-b", "$");
      await c.call(
        "XREADGROUP",
        "GROUP",
        "group-a",
        "consumer-1",
        "COUNT",
        "2",
        "STREAMS",
        `${p}stream`,
        ">",
      );
      await c.call("XACK", `${p}stream`, "group-a", "1-1");
      await c.call("PFADD", `${p}hll`, ...Array.from({ length: 500 }, (_, i) => `visitor-${i}`));
      await c.call("SETBIT", `${p}bitmap`, "7", "1");
      await c.call("SETBIT", `${p}bitmap`, "100000", "1");
      await c.call("SET", `${p}ttl-long`, "expires in an hour", "EX", "3600");
      await c.call("HSET", `${p}ttl-hash`, "k", "v");
      await c.call("PEXPIRE", `${p}ttl-hash`, "7200000");
      counts[`db${db}`] = { keys: 16, expires: 2 };
    }
    await c.call("SELECT", "0");
    return counts;
  });
}

export interface KeyDump {
  /** The value: its DUMP (for streams that includes the groups and PELs), or sorted members for sets/hashes. */
  value: string;
  /** PTTL in ms, -1 for none. */
  pttl: number;
}

/** Every key of every database → its DUMP and PTTL ("db<n>:<hex key>"). */
export async function dumpAll(server: RedisEndpoint): Promise<Map<string, KeyDump>> {
  return session(server, async (c) => {
    const out = new Map<string, KeyDump>();
    const keyspace = replyText(await c.call("INFO", "keyspace"));
    const dbs = [...keyspace.matchAll(/^db(\d+):/gm)].map((m) => m[1]!);
    for (const db of dbs) {
      await c.call("SELECT", db);
      let cursor = "0";
      do {
        const [next, keys] = (await c.call("SCAN", cursor, "COUNT", "1000")) as [Buffer, Buffer[]];
        cursor = next.toString();
        for (const key of keys) {
          const pttl = (await c.call("PTTL", key)) as number;
          out.set(`db${db}:${key.toString("hex")}`, { value: await canonicalValue(c, key), pttl });
        }
      } while (cursor !== "0");
    }
    return out;
  });
}

/**
 * A value in a form that two servers agree on: DUMP, except for sets and hashes, whose DUMP follows the order of a
 * hash table seeded per process — those are compared as their sorted members / field-value pairs.
 */
async function canonicalValue(c: RedisClient, key: Buffer): Promise<string> {
  const type = replyText(await c.call("TYPE", key));
  const hex = (items: RespValue) => (items as Buffer[]).map((b) => b.toString("hex"));
  if (type === "set")
    return `set:${hex(await c.call("SMEMBERS", key))
      .sort()
      .join(",")}`;
  if (type === "hash") {
    const flat = hex(await c.call("HGETALL", key));
    const pairs = Array.from({ length: flat.length / 2 }, (_, i) => `${flat[2 * i]}=${flat[2 * i + 1]}`);
    return `hash:${pairs.sort().join(",")}`;
  }
  return `${type}:${((await c.call("DUMP", key)) as Buffer).toString("hex")}`;
}

/** Asserts-friendly comparison: the keys that differ (value, or a TTL off by more than `ttlToleranceMs`). */
export function dumpDifferences(
  expected: Map<string, KeyDump>,
  actual: Map<string, KeyDump>,
  ttlToleranceMs = 30_000,
): string[] {
  const differences: string[] = [];
  for (const key of new Set([...expected.keys(), ...actual.keys()])) {
    const want = expected.get(key);
    const got = actual.get(key);
    if (!want) differences.push(`${key}: not in the source`);
    else if (!got) differences.push(`${key}: missing`);
    else if (want.value !== got.value) differences.push(`${key}: value differs`);
    else if (want.pttl < 0 !== got.pttl < 0 || Math.abs(want.pttl - got.pttl) > ttlToleranceMs) {
      differences.push(`${key}: ttl ${got.pttl} ms, source ${want.pttl} ms`);
    }
  }
  return differences;
}

/** A tiny valid RDB (version 10, one string key in db0) with its CRC-64 trailer. */
export function tinyRdb(): Buffer {
  const body = Buffer.concat([
    Buffer.from("REDIS0010"),
    Buffer.from([0xfe, 0x00, 0xfb, 0x01, 0x00, 0x00, 0x01]),
    Buffer.from("k"),
    Buffer.from([0x01]),
    Buffer.from("v"),
    Buffer.from([0xff]),
  ]);
  return Buffer.concat([body, new Crc64().update(body).digestBytes()]);
}

/**
 * A fake master: answers AUTH/INFO/REPLCONF/PING like a Redis 7 server and, on SYNC, calls `onSync` with the raw
 * socket so a test can send whatever payload it wants (truncated, corrupt…).
 */
export async function fakeMaster(
  onSync: (socket: Socket) => void,
): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    const reader = new RespReader();
    socket.on("data", (chunk: Buffer) => {
      reader.push(chunk);
      for (let command = reader.next(); command !== undefined; command = reader.next()) {
        const args = Array.isArray(command) ? command.map((a) => replyText(a)) : [];
        const name = (args[0] ?? "").toUpperCase();
        if (name === "SYNC") {
          socket.removeAllListeners("data");
          onSync(socket);
          return;
        }
        if (name === "INFO") {
          const text = "# Server\r\nredis_version:7.0.99\r\n# Memory\r\nused_memory:1000\r\n";
          socket.write(`$${text.length}\r\n${text}\r\n`);
        } else socket.write("+OK\r\n");
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
