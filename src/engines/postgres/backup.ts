/**
 * PostgreSQL backup: `pg_dump --format=custom --compress=0` piped through multi-threaded zstd straight into the
 * store — no temp file, constant memory — with row counts taken in the very snapshot the dump reads
 * (`pg_export_snapshot()` + `pg_dump --snapshot`). Why zstd and not pg_dump's own zlib: docs/adr/0002.
 */
import type { ArtifactSink, UploadedArtifact } from "../../domain/artifact.js";
import type { Artifact } from "../../domain/statefile.js";
import { spawnPipeline } from "../process-pipeline.js";
import { libpqEnv, type PgConnection } from "./connection.js";
import { tableRowCounts, type PgFingerprint } from "./fingerprint.js";
import { connect, translatePgError } from "./sql.js";
import {
  CLIENT_PACKAGE,
  type Compression,
  DEFAULT_COMPRESSION,
  assertClientCanDump,
  pgToolVersion,
  zstdCompress,
  zstdVersion,
} from "./tools.js";

export const PG_ARTIFACT_NAME = "dump.pgcustom.zst";
export const PG_ARTIFACT_FORMAT = "pg_dump-custom";

export interface PgBackupResult {
  readonly artifact: Artifact;
  readonly fingerprint: PgFingerprint;
  readonly source: { host: string; port: number; database: string; serverVersion: string; sizeBytes: number };
  readonly tool: Record<string, string>;
}

export async function backupPostgres(
  conn: PgConnection,
  sink: ArtifactSink,
  options: { compression?: Compression; onPhase?: (phase: string) => void; signal?: AbortSignal } = {},
): Promise<PgBackupResult> {
  const compression = options.compression ?? DEFAULT_COMPRESSION;
  const phase = options.onPhase ?? (() => undefined);
  phase("connecting");
  const client = await connect(conn);
  try {
    const info = await client.query<{ version: string; num: string; size: string }>(
      "SELECT current_setting('server_version') AS version, current_setting('server_version_num') AS num, " +
        "pg_database_size(current_database())::text AS size",
    );
    const server = info.rows[0]!;
    const [dumpVersion, zstd] = await Promise.all([pgToolVersion("pg_dump"), zstdVersion()]);
    assertClientCanDump("pg_dump", dumpVersion.major, Number(server.num));

    // The exported snapshot lives as long as this transaction: pg_dump reads it, and so do the row counts.
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
    const snapshot = (await client.query<{ id: string }>("SELECT pg_export_snapshot() AS id")).rows[0]!.id;

    phase("dumping");
    const dump = spawnPipeline(
      [
        {
          command: "pg_dump",
          args: ["--format=custom", "--compress=0", `--snapshot=${snapshot}`, "--no-password"],
          env: libpqEnv(conn),
          package: CLIENT_PACKAGE,
        },
        zstdCompress(compression),
      ],
      options.signal ? { signal: options.signal } : {},
    );
    const counting = tableRowCounts(client);
    let uploaded: UploadedArtifact;
    try {
      uploaded = await sink.uploadArtifact(PG_ARTIFACT_NAME, dump.output, { sizeHint: Number(server.size) });
      await dump.done;
    } catch (error) {
      // The first cause wins: when the upload failed, pg_dump's "terminated by user" is only its casualty; when
      // pg_dump failed first, the upload's "stream destroyed" is. `done` already holds a tool failure that came first.
      dump.kill(error instanceof Error ? error : new Error(String(error)));
      throw await dump.done.then(
        () => error,
        (first: unknown) => first,
      );
    }
    const tables = await counting;
    await client.query("COMMIT");

    return {
      artifact: {
        name: PG_ARTIFACT_NAME,
        format: PG_ARTIFACT_FORMAT,
        formatVersion: `pg_dump ${dumpVersion.text}`,
        compression: "zstd",
        ...uploaded,
      },
      fingerprint: { tables, serverVersion: server.version, databaseSizeBytes: Number(server.size) },
      source: {
        host: conn.host,
        port: conn.port,
        database: conn.database,
        serverVersion: server.version,
        sizeBytes: Number(server.size),
      },
      tool: { pg_dump: dumpVersion.text, zstd, zstdLevel: String(compression.level) },
    };
  } catch (error) {
    throw translatePgError(error, conn, conn.database);
  } finally {
    await client.end().catch(() => undefined);
  }
}
