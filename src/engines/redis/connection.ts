import { registerSecret } from "../../redact.js";
import { configError, fieldOrEnv, readCaFile, serverAddress } from "../connection-fields.js";

/** Where a Redis server is and who capsule is there. The password is only ever read from the environment. */
export interface RedisConnection {
  readonly host: string;
  readonly port: number;
  /** ACL user (Redis 6+); unset means the default user (`AUTH <password>`). */
  readonly user?: string;
  readonly password?: string;
  /** TLS to the server (`--tls`); the certificate and host name are always verified unless `insecure`. */
  readonly tls?: {
    /** PEM bundle to verify the server with, instead of the system's CAs. */
    readonly ca?: string;
    /** Skip certificate verification (warned about by the command). */
    readonly insecure: boolean;
  };
}

export interface RedisConnectionFlags {
  readonly host?: string | undefined;
  readonly port?: string | undefined;
  readonly user?: string | undefined;
  /** The name of the environment variable that holds the password. @default REDISCLI_AUTH */
  readonly passwordEnv?: string | undefined;
  readonly tls?: boolean | undefined;
  /** PEM file with the CA to verify the server with. */
  readonly caCert?: string | undefined;
  readonly insecureSkipTlsVerify?: boolean | undefined;
}

/** What `capsule run` is given (plan/run-contract.ts), and redis-cli's defaults. */
export const REDIS_SERVER = { hostEnv: "REDIS_HOST", host: "127.0.0.1", portEnv: "REDIS_PORT", port: 6379 };

/** The variable redis-cli itself reads; also what a compiled CronJob sets (plan/run-contract.ts). */
export const DEFAULT_PASSWORD_ENV = "REDISCLI_AUTH";

/**
 * The given fields first, then REDIS_HOST / REDIS_PORT (what `capsule run` is given), then redis-cli's defaults.
 * Throws a `FieldError` naming the field or variable at fault (the CLI shows a field as its flag).
 */
export function redisConnectionFrom(flags: RedisConnectionFlags, env: NodeJS.ProcessEnv): RedisConnection {
  const passwordEnv = flags.passwordEnv ?? DEFAULT_PASSWORD_ENV;
  const password = env[passwordEnv];
  if (flags.passwordEnv && password === undefined) {
    throw configError(
      "passwordEnv",
      `{passwordEnv} ${flags.passwordEnv}: the variable ${flags.passwordEnv} is not set`,
    );
  }
  registerSecret(password);
  const { host, port } = serverAddress(
    flags,
    env,
    REDIS_SERVER,
    `pass the user with {user} and the password in ${passwordEnv}`,
  );
  const ca = readCaFile("caCert", fieldOrEnv(flags.caCert, "caCert", env, "REDIS_CA_CERT"));
  const tls = flags.tls === true || env["REDIS_TLS"] === "true";
  return {
    host,
    port,
    ...(flags.user ? { user: flags.user } : {}),
    ...(password ? { password } : {}),
    // A CA or the opt-out only make sense over TLS, so either one asks for it.
    ...(tls || ca !== undefined || flags.insecureSkipTlsVerify
      ? { tls: { ...(ca !== undefined ? { ca } : {}), insecure: flags.insecureSkipTlsVerify === true } }
      : {}),
  };
}

export function describeConnection(conn: RedisConnection): string {
  const host = conn.host.includes(":") ? `[${conn.host}]` : conn.host;
  return `${conn.tls ? "rediss" : "redis"}://${conn.user ? `${conn.user}@` : ""}${host}:${conn.port}`;
}
