/**
 * Real servers for tests: PostgreSQL, Redis, an S3 endpoint (Ceph radosgw) and Azure Blob Storage (Azurite), each
 * throwaway, on 127.0.0.1,
 * on free ports, with data in a temporary directory (or RAM).
 *
 * `npm test` (test/run.ts) starts them once and hands them to every test file in CAPSULE_TEST_SERVERS; a test
 * file run on its own (`node --import tsx --test test/integration/x.test.ts`) starts its own through
 * `testServers()`.
 */
import { randomBytes } from "node:crypto";
import { azureEnv, createContainer, startAzurite, type AzureInfo, type AzuriteServer } from "./azurite.js";
import { formatHarnessError, HarnessError, stopAll } from "./process.js";
import { startPostgres, type PostgresServer } from "./postgres.js";
import { startRadosgw, type RadosgwServer } from "./radosgw.js";
import { startRedis, type RedisServer } from "./redis.js";
import { createBucket, s3Client, s3Env, type S3Info } from "./s3.js";

export { azureEnv, createBucket, createContainer, s3Client, s3Env, formatHarnessError, HarnessError };
export { freePort } from "./ports.js";
export { findBinary, requireBinary, run } from "./process.js";

export interface TestServers {
  /** What test files need of the server: plain data, so it travels as JSON in CAPSULE_TEST_SERVERS. */
  pg: Pick<
    PostgresServer,
    "host" | "port" | "user" | "password" | "database" | "binDir" | "version" | "socketDir"
  >;
  redis: Pick<RedisServer, "host" | "port">;
  /** `cephConf` lets a test start a second radosgw of the same cluster (startExtraRadosgw). */
  s3: S3Info & Pick<RadosgwServer, "cephConf">;
  azure: AzureInfo;
}

/** The environment variable through which test/run.ts hands the servers to test files. */
export const SERVERS_ENV = "CAPSULE_TEST_SERVERS";

export interface StartedServers {
  servers: TestServers;
  /** Milliseconds each server took to start. */
  startupMs: { pg: number; redis: number; s3: number; azure: number };
  stop(): Promise<void>;
}

async function timed<T>(start: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await start();
  return { value, ms: Math.round(performance.now() - t0) };
}

/**
 * Start PostgreSQL, Redis, radosgw and Azurite in parallel. If one fails, the others are stopped and the error (a
 * HarnessError naming the log files to read) says which one and why.
 */
export async function startAllServers(): Promise<StartedServers> {
  const [pg, redis, s3, azure] = await Promise.allSettled([
    timed<PostgresServer>(startPostgres),
    timed<RedisServer>(startRedis),
    timed<RadosgwServer>(startRadosgw),
    timed<AzuriteServer>(startAzurite),
  ]);
  const all = [pg, redis, s3, azure];
  const failures = all.filter((r): r is PromiseRejectedResult => r.status === "rejected");
  if (
    pg.status !== "fulfilled" ||
    redis.status !== "fulfilled" ||
    s3.status !== "fulfilled" ||
    azure.status !== "fulfilled"
  ) {
    await Promise.allSettled(all.flatMap((r) => (r.status === "fulfilled" ? [r.value.value.stop()] : [])));
    const reasons = failures.map((f) => f.reason as unknown);
    if (reasons.length === 1) throw reasons[0];
    throw new HarnessError(reasons.map((r) => (r instanceof Error ? r.message : String(r))).join("\n"), {
      logFiles: reasons.flatMap((r) => (r instanceof HarnessError ? r.logFiles : [])),
    });
  }
  const p = pg.value.value;
  const r = redis.value.value;
  const s = s3.value.value;
  const a = azure.value.value;
  const servers: TestServers = {
    pg: {
      host: p.host,
      port: p.port,
      user: p.user,
      password: p.password,
      database: p.database,
      binDir: p.binDir,
      version: p.version,
      socketDir: p.socketDir,
    },
    redis: { host: r.host, port: r.port },
    s3: {
      endpoint: s.endpoint,
      accessKeyId: s.accessKeyId,
      secretAccessKey: s.secretAccessKey,
      region: s.region,
      cephConf: s.cephConf,
    },
    azure: {
      blobEndpoint: a.blobEndpoint,
      account: a.account,
      key: a.key,
      connectionString: a.connectionString,
    },
  };
  let stopping: Promise<void> | undefined;
  return {
    servers,
    startupMs: { pg: pg.value.ms, redis: redis.value.ms, s3: s3.value.ms, azure: azure.value.ms },
    stop: () => {
      stopping ??= Promise.allSettled([p.stop(), r.stop(), s.stop(), a.stop()]).then(() => undefined);
      return stopping;
    },
  };
}

let ownServers: Promise<TestServers> | undefined;

/**
 * For test files: the servers started by test/run.ts (CAPSULE_TEST_SERVERS holds their JSON), or, when a test
 * file is run alone, servers started now and stopped when this process exits.
 */
export function testServers(): Promise<TestServers> {
  const fromEnv = process.env[SERVERS_ENV];
  if (fromEnv) return Promise.resolve(JSON.parse(fromEnv) as TestServers);
  ownServers ??= (async () => {
    try {
      const started = await startAllServers();
      // The daemons do not keep the event loop alive: when the tests are done, stop them in order.
      process.once("beforeExit", () => void started.stop());
      return started.servers;
    } catch (err) {
      await stopAll();
      throw new Error(formatHarnessError(err));
    }
  })();
  return ownServers;
}

/**
 * A random name that is also a valid S3 bucket and Azure container name: lowercase letters, digits and single
 * dashes, at most 63.
 */
export function uniqueName(prefix: string): string {
  const clean = prefix
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 40);
  const suffix = randomBytes(6).toString("hex");
  return clean ? `${clean}-${suffix}` : `t-${suffix}`;
}
