/**
 * The check of a recovered data directory in a physical drill: the bootstrap superuser's name read in single-user
 * mode (a restored cluster's roles are the source's, and its pg_hba is the source's), then a private postmaster with
 * trust on its own socket only, every database listed and its catalog queried. The server is stopped however it ends.
 */
import { writeFile, chown } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { CapsuleError, ErrorCode } from "../../domain/errors.js";
import { runTool } from "../process-pipeline.js";
import { freePort, serviceAccount, startScratchServer } from "../scratch-server.js";
import type { PgConnection } from "./connection.js";
import { postgresBinDir } from "./physical-restore.js";
import { withClient } from "./sql.js";

/** Starts the cluster in `dataDir` (inside a directory the drill owns), queries it; removes that directory. */
export async function checkRecoveredCluster(
  dataDir: string,
  major: string,
  signal: AbortSignal,
): Promise<string> {
  const bin = postgresBinDir(major);
  const owner = serviceAccount("postgres");
  const dir = path.dirname(dataDir);
  const superuser = await bootstrapSuperuser(bin, dataDir, owner, signal);
  const hba = path.join(dir, "drill_hba.conf");
  await writeFile(hba, "local all all trust\n");
  if (owner) await chown(hba, owner.uid, owner.gid);
  const port = await freePort();
  const conn: PgConnection = { host: dir, port, user: superuser, database: "postgres" };
  const server = await startScratchServer({
    command: path.join(bin, "postgres"),
    // prettier-ignore
    args: ["-D", dataDir, "-p", String(port), "-c", "listen_addresses=", "-c", `unix_socket_directories=${dir}`,
      "-c", `hba_file=${hba}`, "-c", "archive_mode=off", "-c", "fsync=off"],
    dir,
    port,
    owner,
    package: `postgresql-${major}`,
    stopSignal: "INT",
    signal,
    ready: () => withClient(conn, "template1", (c) => c.query("SELECT 1")).then(() => true),
  });
  try {
    const { databases, inRecovery } = await withClient(conn, "template1", async (c) => ({
      databases: (
        await c.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1")
      ).rows.map((r) => r.datname),
      inRecovery: (await c.query<{ r: boolean }>("SELECT pg_is_in_recovery() AS r")).rows[0]!.r,
    }));
    if (inRecovery)
      throw new CapsuleError(ErrorCode.ToolFailed, "the recovered cluster is still in recovery");
    let relations = 0;
    for (const database of databases) {
      relations += await withClient(conn, database, async (c) => {
        // Reads every relation's catalog row and its size: a missing or unreadable relation file fails here.
        const r = await c.query<{ n: string }>(
          "SELECT count(pg_relation_size(oid))::text AS n FROM pg_class WHERE relkind IN ('r', 'i', 'm', 't')",
        );
        return Number(r.rows[0]!.n);
      });
    }
    return `it started as a primary and answered: ${databases.length} databases (${databases.join(", ")}), ${relations} relations`;
  } finally {
    await server.stop();
  }
}

async function bootstrapSuperuser(
  bin: string,
  dataDir: string,
  owner: { uid: number; gid: number } | undefined,
  signal: AbortSignal,
): Promise<string> {
  const out = await runTool(
    {
      command: path.join(bin, "postgres"),
      args: ["--single", "-D", dataDir, "-c", "archive_mode=off", "template1"],
      ...(owner ? { owner } : {}),
    },
    { input: Readable.from(["SELECT rolname FROM pg_authid WHERE oid = 10;\n"]), signal },
  );
  const name = /rolname = "([^"]+)"/.exec(out)?.[1];
  if (!name) throw new CapsuleError(ErrorCode.ToolFailed, "the recovered cluster did not name its superuser");
  return name;
}
