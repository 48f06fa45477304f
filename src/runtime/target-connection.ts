/**
 * A compiled target's database connection inside its pod: host, port and database from CAPSULE_TARGET, user and
 * password from the env the CronJob fills from Secrets (plan/run-contract.ts). Shared by `capsule run`'s backup,
 * restore and drill paths so the three can never disagree about where the database is.
 */
import { pgConnectionFrom, type PgConnection } from "../engines/postgres/connection.js";
import { redisConnectionFrom, type RedisConnection } from "../engines/redis/connection.js";
import { esConnectionFrom, type EsConnection } from "../engines/elasticsearch/connection.js";
import type { RunTarget } from "../plan/run-contract.js";

export function pgConnectionOf(target: RunTarget, env: NodeJS.ProcessEnv): PgConnection {
  return pgConnectionFrom(
    {
      ...(target.connection.host ? { host: target.connection.host } : {}),
      port: String(target.connection.port),
      ...(target.connection.database ? { database: target.connection.database } : {}),
    },
    env,
  );
}

export function redisConnectionOf(target: RunTarget, env: NodeJS.ProcessEnv): RedisConnection {
  return redisConnectionFrom(
    {
      ...(target.connection.host ? { host: target.connection.host } : {}),
      port: String(target.connection.port),
    },
    env,
  );
}

export function esConnectionOf(target: RunTarget, env: NodeJS.ProcessEnv): EsConnection {
  return esConnectionFrom(target.connection.url ? { url: target.connection.url } : {}, env);
}
