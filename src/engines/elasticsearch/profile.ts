/** Elasticsearch as the planner, scanner and compiler see it (engines/profile.ts); no runtime code. */
import type { EngineProfile } from "../profile.js";

export const elasticsearchProfile: EngineProfile = {
  name: "elasticsearch",
  command: "es",
  streamsWal: false,
  cnvrgKey: "es",
  svcName: "elasticsearch",
  port: 9200,
  credsSecret: "es-creds",
  credentialKeys: { user: "CNVRG_ES_USER", password: "CNVRG_ES_PASS" },
  connectionFields: ["url"],
  hostInSecret: false,
  podEnv: [
    // A plan names the cluster by url, or by host and port over plain HTTP (cnvrg's in-cluster service).
    { name: "ES_URL", field: "url", fallback: "http://{host}:{port}" },
    { name: "ES_USER", secret: "user" },
    { name: "ES_PASSWORD", secret: "password" },
  ],
};
