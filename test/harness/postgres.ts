import { chownSync, existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "./ports.js";
import {
  HarnessError,
  keepTempDir,
  lookupUser,
  makeTempDir,
  removeTempDir,
  run,
  startDaemon,
  waitFor,
} from "./process.js";

export const PG_USER = "postgres";
export const PG_PASSWORD = "capsule-test-pg-pass";
export const PG_DATABASE = "postgres";

export interface PostgresServer {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** Directory of the server's binaries (pg_dump, psql, ... of the same version). */
  binDir: string;
  /** Server version, e.g. "15.14". */
  version: string;
  /** Directory of the Unix socket (connections there need no password). */
  socketDir: string;
  dataDir: string;
  logFile: string;
  /** Stops the server (fast shutdown) and starts it again on the same port and data directory. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  /** Server settings over the harness's own (`max_wal_senders: "0"`). */
  settings?: Record<string, string>;
  /** Start a hot standby of this server instead: its data directory comes from `pg_basebackup -R`, not initdb. */
  standbyOf?: Pick<PostgresServer, "socketDir" | "port" | "user">;
  /**
   * Archive every completed WAL segment into this directory (`archive_mode=on`, `archive_command='cp %p DIR/%f'`):
   * the WAL source of point-in-time tests that prove the restore apart from capsule's streamer
   * (test/support/wal-shipper.ts).
   */
  readonly archiveWalTo?: string;
}

/** The bin directory of the newest PostgreSQL installed the Debian way (/usr/lib/postgresql/<major>/bin). */
export function findPostgresBinDir(): string {
  const override = process.env["CAPSULE_TEST_PG_BINDIR"];
  if (override) {
    if (!existsSync(join(override, "initdb"))) {
      throw new HarnessError(`CAPSULE_TEST_PG_BINDIR=${override} has no initdb`);
    }
    return override;
  }
  const root = "/usr/lib/postgresql";
  const majors = existsSync(root)
    ? readdirSync(root)
        .filter((v) => /^\d+$/.test(v) && existsSync(join(root, v, "bin", "initdb")))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const newest = majors[0];
  if (newest === undefined) throw new HarnessError("initdb not found: apt-get install postgresql");
  return join(root, newest, "bin");
}

/**
 * A throwaway PostgreSQL cluster: 127.0.0.1 only, fsync off, trust over the Unix socket, password
 * (scram-sha-256) over TCP. As root the server runs as the `postgres` user (PostgreSQL refuses root).
 */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  const binDir = findPostgresBinDir();
  const asRoot = process.getuid?.() === 0;
  const account = asRoot ? lookupUser("postgres") : undefined;
  if (asRoot && account === undefined) {
    throw new HarnessError("no 'postgres' user to run PostgreSQL as: apt-get install postgresql");
  }
  const ids = account ? { uid: account.uid, gid: account.gid } : {};
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...(account ? { HOME: account.home, USER: "postgres", LOGNAME: "postgres" } : {}),
    LC_ALL: "C",
  };

  const dir = makeTempDir("capsule-pg-");
  const dataDir = join(dir, "data");
  const socketDir = join(dir, "sock");
  const logFile = join(dir, "postgres.log");
  const pwFile = join(dir, "pwfile");
  mkdirSync(socketDir);
  writeFileSync(pwFile, `${PG_PASSWORD}\n`, { mode: 0o600 });
  writeFileSync(logFile, "");
  if (account) {
    for (const p of [dir, socketDir, pwFile, logFile]) chownSync(p, account.uid, account.gid);
  }

  const host = "127.0.0.1";
  const port = await freePort();
  const version = (await run(join(binDir, "postgres"), ["--version"])).stdout.match(/\d+(\.\d+)+/)?.[0] ?? "";

  let daemon: ReturnType<typeof startDaemon> | undefined;
  let launch: () => ReturnType<typeof startDaemon> = () => {
    throw new HarnessError("postgres was never started");
  };
  let ready: (d: ReturnType<typeof startDaemon>) => Promise<void> = () => Promise.resolve();
  try {
    // prettier-ignore
    const initdbArgs = [
      "-D", dataDir,
      "-U", PG_USER,
      "--pwfile", pwFile,
      "--auth-local=trust",
      "--auth-host=scram-sha-256",
      "-E", "UTF8",
      "--locale=C",
      "--no-sync",
    ];
    const primary = options.standbyOf;
    if (primary) {
      // prettier-ignore
      await run(join(binDir, "pg_basebackup"), [
        "-h", primary.socketDir, "-p", String(primary.port), "-U", primary.user, "-D", dataDir, "-R", "-X", "stream",
      ], { ...ids, env, cwd: dir, timeoutMs: 120_000 });
    } else await run(join(binDir, "initdb"), initdbArgs, { ...ids, env, cwd: dir, timeoutMs: 120_000 });
    if (!primary)
      writeFileSync(
        join(dataDir, "pg_hba.conf"),
        [
          "# capsule test harness",
          "local   all          all                  trust",
          "local   replication  all                  trust",
          "host    all          all   127.0.0.1/32   scram-sha-256",
          "host    replication  all   127.0.0.1/32   scram-sha-256",
          "",
        ].join("\n"),
      );
    if (account) chownSync(join(dataDir, "pg_hba.conf"), account.uid, account.gid);

    const settings: Record<string, string> = {
      listen_addresses: host,
      unix_socket_directories: socketDir,
      fsync: "off",
      synchronous_commit: "off",
      full_page_writes: "off",
      password_encryption: "scram-sha-256",
      logging_collector: "off",
      max_connections: "100",
      wal_level: "replica",
      max_wal_senders: "10",
      ...options.settings,
      ...(options.archiveWalTo
        ? { archive_mode: "on", archive_command: `cp %p ${options.archiveWalTo}/%f` }
        : {}),
    };
    launch = () =>
      startDaemon(
        join(binDir, "postgres"),
        [
          "-D",
          dataDir,
          "-p",
          String(port),
          ...Object.entries(settings).flatMap(([k, v]) => ["-c", `${k}=${v}`]),
        ],
        {
          name: "postgres",
          logFile,
          env,
          cwd: dir,
          ...ids,
          // SIGINT is PostgreSQL's "fast shutdown"; SIGQUIT ("immediate") makes the postmaster kill its backends.
          stopSignal: "SIGINT",
          emergencySignal: "SIGQUIT",
          // The backends run in their own sessions; only the postmaster is signalled.
          signalGroup: false,
          stopTimeoutMs: 15_000,
        },
      );
    ready = async (d: ReturnType<typeof startDaemon>) =>
      waitFor(
        `postgres on ${host}:${port}`,
        async () => {
          await run(join(binDir, "pg_isready"), ["-q", "-h", socketDir, "-p", String(port), "-U", PG_USER], {
            timeoutMs: 5000,
          });
          return true;
        },
        { timeoutMs: 60_000, intervalMs: 100, daemons: [d] },
      );
    daemon = launch();
    await ready(daemon);
  } catch (err) {
    await daemon?.stop();
    keepTempDir(dir);
    throw new HarnessError(`postgres failed to start (files in ${dir}): ${(err as Error).message}`, {
      logFiles: [logFile],
      cause: err,
    });
  }
  let d = daemon;
  return {
    host,
    port,
    user: PG_USER,
    password: PG_PASSWORD,
    database: PG_DATABASE,
    binDir,
    version,
    socketDir,
    dataDir,
    logFile,
    restart: async () => {
      await d.stop();
      d = launch();
      await ready(d);
    },
    stop: async () => {
      await d.stop();
      await removeTempDir(dir);
    },
  };
}
