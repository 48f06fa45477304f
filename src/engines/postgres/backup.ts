/**
 * PostgreSQL backup: `pg_dump --format=custom --compress=0` piped through multi-threaded zstd straight into the
 * store — no temp file, constant memory — with row counts taken in the very snapshot the dump reads
 * (`pg_export_snapshot()` + `pg_dump --snapshot`). Why zstd and not pg_dump's own zlib: docs/adr/0002.
 */
import type { ArtifactSink, UploadedArtifact } from "../../domain/artifact.js";
import type { EngineBackupResult, EngineContext } from "../engine.js";
import { toolsCanBeTied, toolsProducer, type ToolCommand } from "../process-pipeline.js";
import { libpqEnv, type PgConnection } from "./connection.js";
import { tableRowCounts } from "./fingerprint.js";
import { withClient } from "./sql.js";
import {
  CLIENT_PACKAGE,
  DEFAULT_COMPRESSION,
  assertClientCanDump,
  pgToolVersion,
  zstdCompress,
  zstdVersion,
} from "./tools.js";

export const PG_ARTIFACT_NAME = "dump.pgcustom.zst";
export const PG_ARTIFACT_FORMAT = "pg_dump-custom";

export function backupPostgres(
  conn: PgConnection,
  sink: ArtifactSink,
  context: Pick<EngineContext, "onPhase" | "signal">,
): Promise<EngineBackupResult> {
  context.onPhase("connecting");
  const tools = askTools("pg_dump");
  return withClient(conn, conn.database, async (client) => {
    const info = await client.query<{ version: string; num: string; size: string }>(
      "SELECT current_setting('server_version') AS version, current_setting('server_version_num') AS num, " +
        "pg_database_size(current_database())::text AS size",
    );
    const server = info.rows[0]!;
    const [dumpVersion, zstd] = await tools;
    assertClientCanDump("pg_dump", dumpVersion.major, Number(server.num));

    // The exported snapshot lives as long as this transaction: pg_dump reads it, and so do the row counts.
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
    // The counts run beside pg_dump and zstd, which already fill the cores: parallel workers would only take CPU
    // from them, and start processes of their own. One backend counts well before the dump ends.
    await client.query("SET LOCAL max_parallel_workers_per_gather = 0");
    const snapshot = (await client.query<{ id: string }>("SELECT pg_export_snapshot() AS id")).rows[0]!.id;

    context.onPhase("dumping");
    const dump: ToolCommand = {
      command: "pg_dump",
      args: ["--format=custom", "--compress=0", `--snapshot=${snapshot}`, "--no-password"],
      env: libpqEnv(conn),
      package: CLIENT_PACKAGE,
    };
    const counting = tableRowCounts(client);
    const uploaded = await uploadThroughZstd(
      sink,
      PG_ARTIFACT_NAME,
      dump,
      Number(server.size),
      context.signal,
    );
    const tables = await counting;
    await client.query("COMMIT");
    return {
      ...zstdBackup(conn, server, uploaded, {
        name: PG_ARTIFACT_NAME,
        format: PG_ARTIFACT_FORMAT,
        tool: "pg_dump",
        version: dumpVersion.text,
        zstd,
      }),
      fingerprint: { tables, serverVersion: server.version, databaseSizeBytes: Number(server.size) },
    };
  });
}

/**
 * The versions of `tool` and zstd, and whether the tools can be tied to capsule, asked at once and while the server
 * is being connected to: each is a process start (Debian's pg_dump is a Perl wrapper), ~0.1 s in all before a dump
 * could begin. Awaited after the server answered, so an unreachable server is still the error reported.
 */
export function askTools(
  tool: "pg_dump" | "pg_basebackup",
): Promise<[{ text: string; major: number }, string, boolean]> {
  const asked = Promise.all([pgToolVersion(tool), zstdVersion(), toolsCanBeTied()]);
  asked.catch(() => undefined);
  return asked;
}

/** `tool | zstd` into the store as `name`; the first failure, the upload's or a tool's, is the one thrown. */
export async function uploadThroughZstd(
  sink: ArtifactSink,
  name: string,
  tool: ToolCommand,
  sizeHint: number,
  signal: AbortSignal,
): Promise<UploadedArtifact> {
  const producer = await toolsProducer([tool, zstdCompress(DEFAULT_COMPRESSION)], signal);
  return sink.uploadArtifact(name, producer, { sizeHint });
}

/** The artifact, source and tools of a backup that `tool` wrote through zstd (logical or physical alike). */
export function zstdBackup(
  conn: PgConnection,
  server: { version: string; size: string },
  uploaded: UploadedArtifact,
  written: { name: string; format: string; tool: string; version: string; zstd: string },
): EngineBackupResult {
  const { name, format, tool, version, zstd } = written;
  return {
    artifact: { name, format, formatVersion: `${tool} ${version}`, compression: "zstd", ...uploaded },
    source: {
      host: conn.host,
      port: conn.port,
      database: conn.database,
      serverVersion: server.version,
      sizeBytes: Number(server.size),
    },
    tool: { [tool]: version, zstd, zstdLevel: String(DEFAULT_COMPRESSION.level) },
  };
}
