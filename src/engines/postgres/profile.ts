/** PostgreSQL as the planner, scanner and compiler see it (engines/profile.ts); no runtime code. */
import type { EngineProfile } from "../profile.js";

export const postgresProfile: EngineProfile = {
  name: "postgresql",
  command: "pg",
  streamsWal: true,
  cnvrgKey: "pg",
  svcName: "postgres",
  port: 5432,
  credsSecret: "pg-creds",
  credentialKeys: {
    host: "POSTGRES_HOST",
    database: "POSTGRES_DB",
    user: "POSTGRES_USER",
    password: "POSTGRES_PASSWORD",
  },
  connectionFields: ["database"],
  // cnvrg's pg-creds carries POSTGRES_HOST and POSTGRES_DB, so a plan may name neither.
  hostInSecret: true,
  // libpq's own variables: pg_dump and psql in the pod read them without a flag.
  podEnv: [
    { name: "PGHOST", field: "host", orSecret: "host" },
    { name: "PGPORT", field: "port" },
    { name: "PGDATABASE", field: "database", orSecret: "database" },
    { name: "PGUSER", secret: "user" },
    { name: "PGPASSWORD", secret: "password" },
  ],
};
