/**
 * A physical base backup (docs/adr/0021): `pg_basebackup -D - -Ft -X fetch` — the cluster's files as one tar on
 * stdout, with the WAL the backup needs to be consistent inside it (so the base backup alone restores to its end
 * point) and PostgreSQL's backup_manifest injected as the tar's last member — piped through zstd straight into the
 * store: no temp file, constant memory. Its place in the WAL (start and end LSN, timeline) is read from
 * pg_basebackup's `-v` lines, the system identifier and segment size from the server.
 */
import type { ArtifactSink, UploadedArtifact } from "../../domain/artifact.js";
import { CapsuleError, ErrorCode } from "../../domain/errors.js";
import { formatLsn, parseLsn, type PhysicalBackupInfo } from "../../domain/wal.js";
import type { EngineBackupResult, EngineContext } from "../engine.js";
import { spawnPipeline } from "../process-pipeline.js";
import { libpqEnv, type PgConnection } from "./connection.js";
import { connect, translatePgError } from "./sql.js";
import { CLIENT_PACKAGE, DEFAULT_COMPRESSION, pgToolVersion, zstdCompress, zstdVersion } from "./tools.js";

export const PHYSICAL_ARTIFACT_NAME = "base.tar.zst";
export const PHYSICAL_ARTIFACT_FORMAT = "pg_basebackup-tar";
/** pg_basebackup's name for the manifest it puts into the archive. */
export const MANIFEST_NAME = "backup_manifest";

const START_POINT = /write-ahead log start point: ([0-9A-F]+\/[0-9A-F]+) on timeline (\d+)/i;
const END_POINT = /write-ahead log end point: ([0-9A-F]+\/[0-9A-F]+)/i;

export async function backupPhysical(
  conn: PgConnection,
  sink: ArtifactSink,
  context: Pick<EngineContext, "onPhase" | "signal">,
): Promise<EngineBackupResult> {
  context.onPhase("connecting");
  const client = await connect(conn);
  try {
    const info = await client.query<{
      version: string;
      num: string;
      system: string;
      segment: string;
      size: string;
    }>(
      "SELECT current_setting('server_version') AS version, current_setting('server_version_num') AS num, " +
        "(SELECT system_identifier::text FROM pg_control_system()) AS system, " +
        "(SELECT setting FROM pg_settings WHERE name = 'wal_segment_size') AS segment, " +
        "(SELECT sum(pg_database_size(oid))::text FROM pg_database) AS size",
    );
    const server = info.rows[0]!;
    const [tool, zstd] = await Promise.all([pgToolVersion("pg_basebackup"), zstdVersion()]);
    const serverMajor = Math.floor(Number(server.num) / 10_000);
    if (tool.major < serverMajor) {
      throw new CapsuleError(
        ErrorCode.ToolMissing,
        `pg_basebackup ${tool.major} cannot back up PostgreSQL ${serverMajor}: install postgresql-client-${serverMajor}`,
      );
    }

    let stderr = "";
    context.onPhase("copying the cluster's files (pg_basebackup)");
    const pipeline = spawnPipeline(
      [
        {
          command: "pg_basebackup",
          // -c fast: the backup starts at once instead of waiting for the next scheduled checkpoint.
          args: ["-D", "-", "-Ft", "-X", "fetch", "-c", "fast", "-v", "--no-password"],
          env: libpqEnv(conn),
          package: CLIENT_PACKAGE,
          onStderr: (text) => (stderr = (stderr + text).slice(-64 * 1024)),
        },
        zstdCompress(DEFAULT_COMPRESSION),
      ],
      { signal: context.signal },
    );
    let uploaded: UploadedArtifact;
    try {
      uploaded = await sink.uploadArtifact(PHYSICAL_ARTIFACT_NAME, pipeline.output, {
        sizeHint: Number(server.size),
      });
      await pipeline.done;
    } catch (error) {
      pipeline.kill(error instanceof Error ? error : new Error(String(error)));
      throw await pipeline.done.then(
        () => error,
        (first: unknown) => first,
      );
    }
    const start = START_POINT.exec(stderr);
    const end = END_POINT.exec(stderr);
    if (!start || !end) {
      throw new CapsuleError(
        ErrorCode.ToolFailed,
        "pg_basebackup -v did not report its write-ahead log start and end points",
      );
    }
    // The server's clock after the backup's end record: every commit before it is at or after the consistent point.
    const endTime = (await client.query<{ now: Date }>("SELECT clock_timestamp() AS now")).rows[0]!.now;
    const physical: PhysicalBackupInfo = {
      systemIdentifier: server.system,
      timeline: Number(start[2]),
      startLsn: formatLsn(parseLsn(start[1]!)),
      endLsn: formatLsn(parseLsn(end[1]!)),
      endTime: endTime.toISOString(),
      walSegmentSize: Number(server.segment),
      manifest: MANIFEST_NAME,
    };
    return {
      artifact: {
        name: PHYSICAL_ARTIFACT_NAME,
        format: PHYSICAL_ARTIFACT_FORMAT,
        formatVersion: `pg_basebackup ${tool.text}`,
        compression: "zstd",
        ...uploaded,
      },
      source: {
        host: conn.host,
        port: conn.port,
        database: conn.database,
        serverVersion: server.version,
        sizeBytes: Number(server.size),
      },
      tool: { pg_basebackup: tool.text, zstd, zstdLevel: String(DEFAULT_COMPRESSION.level) },
      physical,
    };
  } catch (error) {
    throw translatePgError(error, conn, conn.database);
  } finally {
    await client.end().catch(() => undefined);
  }
}
