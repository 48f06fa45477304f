/**
 * A bucket on the harness' real S3 server (radosgw) holding statefiles in every state — succeeded (verified, failed
 * drill, unverified), failed, abandoned and corrupt — written through the BackupStore as `capsule run` writes them,
 * and a WAL head for the postgresql target as the streamer writes it (its WAL lag series), for the tests of the
 * status API, the status page and the monitoring rules.
 */
import { Readable } from "node:stream";
import { BackupStore } from "../../src/storage/backup-store.js";
import { layout } from "../../src/storage/layout.js";
import { type BackupRef } from "../../src/domain/backup.js";
import { openBucket } from "../../src/storage/open-store.js";
import { serializeStatefile } from "../../src/storage/statefile.js";
import { createBucket, s3Env, uniqueName, type TestServers } from "../harness/index.js";
import { statefile } from "./entries.js";

export const CLUSTER = "cnvrg.app";
export const OTHER_CLUSTER = "other.team";

export interface StatusBucket {
  readonly store: BackupStore;
  /** Good backups: pg1 (drill failed), pg2 (newest, unverified), redis (verified); failed: a failed pg run. */
  readonly refs: { pg1: BackupRef; pg2: BackupRef; redis: BackupRef; failed: BackupRef };
  readonly abandonedId: string;
  readonly corruptKey: string;
  readonly corruptId: string;
}

async function goodBackup(
  store: BackupStore,
  cluster: string,
  target: string,
  engine: "postgresql" | "redis",
  bytes: string,
): Promise<BackupRef> {
  const run = await store.begin({
    cluster,
    target,
    engine,
    trigger: { type: "schedule" },
    source: { host: "db", port: 5432 },
    tool: { capsule: "test" },
  });
  const uploaded = await run.uploadArtifact("dump.bin", Readable.from([Buffer.from(bytes)]));
  await run.commit({
    artifact: {
      name: "dump.bin",
      format: "test",
      compression: "none",
      ...uploaded,
    },
  });
  return run.ref;
}

/**
 * Cluster cnvrg.app: postgresql (two good backups, then a failed run whose error holds the S3 secret, which must
 * never show), redis (one verified good backup and an abandoned run) and a corrupt statefile; other.team: one backup.
 */
export async function fillStatusBucket(servers: TestServers, name = "status"): Promise<StatusBucket> {
  const bucket = uniqueName(name);
  await createBucket(servers.s3, bucket);
  const { store: objects, prefix } = openBucket(`s3://${bucket}/capsule`, {}, s3Env(servers.s3));
  const store = new BackupStore(objects, prefix);
  const pg1 = await goodBackup(store, CLUSTER, "postgresql", "postgresql", "first");
  const pg2 = await goodBackup(store, CLUSTER, "postgresql", "postgresql", "second, longer");
  const redis = await goodBackup(store, CLUSTER, "redis", "redis", "rdb");
  // Drill results: the newest redis backup proven; an older postgres backup failed its drill, the newest unproven.
  await store.update(
    redis,
    (s) => (s.verification = { status: "verified", at: "2026-11-20T00:00:00.000Z", method: "t" }),
  );
  await store.update(
    pg1,
    (s) => (s.verification = { status: "failed", at: "2026-11-21T00:00:00.000Z", method: "t" }),
  );
  const failing = await store.begin({
    cluster: CLUSTER,
    target: "postgresql",
    engine: "postgresql",
    trigger: { type: "manual" },
    source: {},
    tool: {},
  });
  await failing.fail(
    "dumping",
    new Error(`pg_dump: connection refused (password ${servers.s3.secretAccessKey})`),
  );
  const abandoned = statefile({
    cluster: CLUSTER,
    target: "redis",
    engine: "redis",
    status: "running",
    at: "2026-01-01T00:00:00.000Z",
  });
  await objects.put(layout.statefileKey(prefix, abandoned), serializeStatefile(abandoned));
  const corrupt = {
    cluster: CLUSTER,
    engine: "postgresql" as const,
    backupId: "postgresql-20260101T000000Z-bad000",
  };
  const corruptKey = layout.statefileKey(prefix, corrupt);
  await objects.put(corruptKey, "{ not json");
  await goodBackup(store, OTHER_CLUSTER, "postgresql", "postgresql", "x");
  const now = Date.now();
  await store.walArchive(CLUSTER, "postgresql").writeHead({
    version: 1,
    systemIdentifier: "7400000000000000001",
    timeline: 1,
    segmentSize: 16 * 1024 * 1024,
    slot: "capsule_postgresql",
    archivedLsn: "0/3000000",
    archivedAt: new Date(now - 4_000).toISOString(),
    coveredUntil: new Date(now - 5_000).toISOString(),
    serverLsn: "0/3001000",
    serverLsnAt: new Date(now - 1_000).toISOString(),
    updatedAt: new Date(now - 1_000).toISOString(),
  });
  return {
    store,
    refs: { pg1, pg2, redis, failed: failing.ref },
    abandonedId: abandoned.backupId,
    corruptKey,
    corruptId: corrupt.backupId,
  };
}
