/**
 * A physical base backup (docs/adr/0021): `pg_basebackup -D - -Ft -X fetch` — the cluster's files as one tar on
 * stdout, with the WAL the backup needs to be consistent inside it (so the base backup alone restores to its end
 * point) and PostgreSQL's backup_manifest injected as the tar's last member — piped through zstd straight into the
 * store: no temp file, constant memory. Its place in the WAL (start and end LSN, timeline) is read from
 * pg_basebackup's `-v` lines, the system identifier and segment size from the server.
 */
import type { ArtifactSink } from "../../domain/artifact.js";
import { CapsuleError, ErrorCode } from "../../domain/errors.js";
import { formatLsn, parseLsn, type PhysicalBackupInfo } from "../../domain/wal.js";
import type { EngineBackupResult, EngineContext } from "../engine.js";
import type { ToolCommand } from "../process-pipeline.js";
import { askTools, uploadThroughZstd, zstdBackup } from "./backup.js";
import { libpqEnv, type PgConnection } from "./connection.js";
import { withClient } from "./sql.js";
import { CLIENT_PACKAGE } from "./tools.js";

export const PHYSICAL_ARTIFACT_NAME = "base.tar.zst";
export const PHYSICAL_ARTIFACT_FORMAT = "pg_basebackup-tar";
/** pg_basebackup's name for the manifest it puts into the archive. */
export const MANIFEST_NAME = "backup_manifest";

const START_POINT = /write-ahead log start point: ([0-9A-F]+\/[0-9A-F]+) on timeline (\d+)/i;
const END_POINT = /write-ahead log end point: ([0-9A-F]+\/[0-9A-F]+)/i;

export function backupPhysical(
  conn: PgConnection,
  sink: ArtifactSink,
  context: Pick<EngineContext, "onPhase" | "signal">,
): Promise<EngineBackupResult> {
  context.onPhase("connecting");
  const tools = askTools("pg_basebackup");
  return withClient(conn, conn.database, async (client) => {
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
    const [tool, zstd] = await tools;
    const serverMajor = Math.floor(Number(server.num) / 10_000);
    if (tool.major < serverMajor) {
      throw new CapsuleError(
        ErrorCode.ToolMissing,
        `pg_basebackup ${tool.major} cannot back up PostgreSQL ${serverMajor}: install postgresql-client-${serverMajor}`,
      );
    }

    let stderr = "";
    context.onPhase("copying the cluster's files (pg_basebackup)");
    const basebackup: ToolCommand = {
      command: "pg_basebackup",
      // -c fast: the backup starts at once instead of waiting for the next scheduled checkpoint.
      args: ["-D", "-", "-Ft", "-X", "fetch", "-c", "fast", "-v", "--no-password"],
      env: libpqEnv(conn),
      package: CLIENT_PACKAGE,
      onStderr: (text) => (stderr = (stderr + text).slice(-64 * 1024)),
    };
    const uploaded = await uploadThroughZstd(
      sink,
      PHYSICAL_ARTIFACT_NAME,
      basebackup,
      Number(server.size),
      context.signal,
    );
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
      ...zstdBackup(conn, server, uploaded, {
        name: PHYSICAL_ARTIFACT_NAME,
        format: PHYSICAL_ARTIFACT_FORMAT,
        tool: "pg_basebackup",
        version: tool.text,
        zstd,
      }),
      physical,
    };
  });
}
