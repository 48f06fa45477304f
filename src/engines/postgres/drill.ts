/**
 * The PostgreSQL restore drill: restore a backup somewhere it cannot harm production and prove it — the checksum
 * while it streams, then every table's row count against the fingerprint — then remove the scratch target, always.
 * Where: a throwaway cluster (initdb in a temp dir, when the server binaries are present), or a scratch database on
 * a named verification server.
 */
import path from "node:path";
import { spawnPipeline } from "../process-pipeline.js";
import { CapsuleError, ErrorCode } from "../../errors.js";
import type { BackupEntry, BackupStore } from "../../storage/backup-store.js";
import {
  freePort,
  newestPostgresBinDir,
  scratchDir,
  serviceAccount,
  startScratchServer,
} from "../scratch-server.js";
import { describeConnection, type PgConnection } from "./connection.js";
import { restorePostgres } from "./restore.js";
import { ident, withClient } from "./sql.js";

const SCRATCH_USER = "capsule";

export async function drillPostgres(
  store: BackupStore,
  entry: BackupEntry,
  options: { server?: PgConnection; onPhase?: (phase: string) => void; now?: Date } = {},
): Promise<{ method: string; details: string }> {
  const phase = options.onPhase ?? (() => undefined);
  const stamp = (options.now ?? new Date()).toISOString().replace(/[-:T]/g, "").slice(0, 14);
  const scratch = `capsule_verify_${stamp}`;
  if (options.server) {
    const server = options.server;
    phase(`restoring into ${scratch} on ${describeConnection(server, scratch)}`);
    try {
      const outcome = await restorePostgres(server, store, entry, {
        kind: "new-database",
        database: scratch,
      });
      return {
        method: `restore into a scratch database on ${describeConnection(server, scratch)}`,
        details: `${outcome.tables} tables, ${outcome.rows} rows match the fingerprint`,
      };
    } finally {
      await withClient(server, "postgres", (c) =>
        c.query(`DROP DATABASE IF EXISTS ${ident(scratch)} WITH (FORCE)`),
      ).catch(() => undefined);
    }
  }

  const bin = newestPostgresBinDir();
  if (!bin) {
    throw new CapsuleError(
      ErrorCode.ToolMissing,
      "no PostgreSQL server binaries for a throwaway cluster (install postgresql) — or name a verification server with --host",
    );
  }
  phase("starting a throwaway PostgreSQL");
  const owner = serviceAccount("postgres");
  const dir = await scratchDir("verify-pg", owner);
  const data = path.join(dir, "data");
  const initdb = spawnPipeline([
    {
      command: path.join(bin, "initdb"),
      args: ["-D", data, "-U", SCRATCH_USER, "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"],
      package: "postgresql",
      ...(owner ? { owner } : {}),
    },
  ]);
  initdb.output.resume();
  try {
    await initdb.done;
  } catch (error) {
    const { rm } = await import("node:fs/promises");
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const port = await freePort();
  const conn: PgConnection = { host: "127.0.0.1", port, user: SCRATCH_USER, database: scratch };
  const server = await startScratchServer({
    command: path.join(bin, "postgres"),
    args: [
      "-D",
      data,
      "-p",
      String(port),
      "-k",
      dir,
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "fsync=off",
      "-c",
      "full_page_writes=off",
    ],
    dir,
    port,
    owner,
    package: "postgresql",
    ready: () => withClient(conn, "postgres", (c) => c.query("SELECT 1")).then(() => true),
  });
  try {
    phase(`restoring into a throwaway PostgreSQL ${path.basename(path.dirname(bin))}`);
    const outcome = await restorePostgres(
      conn,
      store,
      entry,
      { kind: "new-database", database: scratch },
      { noOwner: true },
    );
    return {
      method: `restore into a throwaway PostgreSQL ${path.basename(path.dirname(bin))}`,
      details: `${outcome.tables} tables, ${outcome.rows} rows match the fingerprint`,
    };
  } finally {
    await server.stop();
  }
}
