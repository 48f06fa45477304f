/** Redis as the planner, scanner and compiler see it (engines/profile.ts); no runtime code. */
import type { EngineProfile } from "../profile.js";

export const redisProfile: EngineProfile = {
  name: "redis",
  command: "redis",
  streamsWal: false,
  cnvrgKey: "redis",
  svcName: "redis",
  port: 6379,
  credsSecret: "redis-creds",
  credentialKeys: { password: "CNVRG_REDIS_PASSWORD" },
  connectionFields: [],
  hostInSecret: false,
  podEnv: [
    { name: "REDIS_HOST", field: "host" },
    { name: "REDIS_PORT", field: "port" },
    // The variable redis-cli itself reads, so an operator can `kubectl exec` and use it.
    { name: "REDISCLI_AUTH", secret: "password" },
  ],
};
