/**
 * Point-in-time restore into a data directory (docs/adr/0021): the base backup's tar extracted (zstd -d | tar -x,
 * streaming), the WAL served from the bucket (physical-wal-stager.ts), a private `postgres` of the backup's major
 * version replaying to the target and promoting, then stopped cleanly — so `pg_ctl start -D DIR` gives a primary.
 *
 * Atomic: everything happens in `<DIR>.capsule-restoring-<random>` beside DIR and only a recovered, promoted and
 * stopped cluster is renamed to DIR. A failure, SIGINT or SIGTERM removes the work directory; after a SIGKILL the
 * server's guard (scratch-server.ts) stops postgres and empties it, and the next restore to DIR removes what is left.
 */
import { existsSync } from "node:fs";
import {
  chown,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  rmdir,
  stat,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { ArtifactSource } from "../../domain/artifact.js";
import { CapsuleError, ErrorCode, FieldError } from "../../domain/errors.js";
import { parseLsn, segmentOf } from "../../domain/wal.js";
import { failpoint } from "../../util/failpoint.js";
import { syncPath } from "../../util/sync-path.js";
import { throwIfInterrupted } from "../../util/interruption.js";
import { interruptedWith } from "../restore-guards.js";
import type { PointInTimeSource, RecoveryTarget, RestoreContext } from "../engine.js";
import { runToEnd } from "../process-pipeline.js";
import {
  freePort,
  isAlive,
  markedOwner,
  markOwner,
  serviceAccount,
  startScratchServer,
  type ScratchServer,
} from "../scratch-server.js";
import { startWalStager, type WalStager } from "./physical-wal-stager.js";
import { zstdDecompress } from "./tools.js";

export interface PhysicalRestoreRequest extends PointInTimeSource {
  readonly target: RecoveryTarget;
  readonly dataDir: string;
}

export interface PhysicalRestoreOutcome {
  readonly dataDir: string;
  readonly backupId: string;
  readonly postgresMajor: string;
  /** What recovery was asked to reach, in words. */
  readonly target: string;
  /** True when the target lay after the last transaction in the WAL, so recovery went to the end instead. */
  readonly reachedEndInstead: boolean;
  /** From the server's log: where redo stopped and the last transaction it replayed. */
  readonly stoppedAtLsn?: string;
  readonly lastTransactionAt?: string;
  readonly stopReason?: string;
  readonly timeline?: number;
}

const WORK_INFIX = ".capsule-restoring-";
const TARGET_NOT_REACHED = "recovery ended before configured recovery target was reached";

/** The work directories a killed restore to `dataDir` left: their owner's PID is gone. */
export async function staleRestoreDirs(dataDir: string): Promise<string[]> {
  const parent = path.dirname(path.resolve(dataDir));
  const prefix = `${path.basename(path.resolve(dataDir))}${WORK_INFIX}`;
  const stale: string[] = [];
  for (const name of (await readdir(parent).catch(() => [])).filter((n) => n.startsWith(prefix))) {
    const dir = path.join(parent, name);
    const pid = await markedOwner(dir);
    if (typeof pid !== "number" || !isAlive(pid)) stale.push(dir);
  }
  return stale;
}

export async function restorePhysical(
  request: PhysicalRestoreRequest,
  context: RestoreContext,
): Promise<PhysicalRestoreOutcome> {
  const { source, physical, signal } = { ...request, signal: context.signal };
  const dataDir = path.resolve(request.dataDir);
  await assertEmptyOrAbsent(dataDir);
  const major = postgresMajor(source.statefile.source.serverVersion);
  const bin = postgresBinDir(major);
  for (const stale of await staleRestoreDirs(dataDir)) {
    context.onNotice(`removing ${stale}, left by an interrupted restore to ${dataDir}`);
    await rm(stale, { recursive: true, force: true });
  }

  const owner = serviceAccount("postgres");
  if (owner) await assertTraversable(path.dirname(dataDir), owner);
  const work = await mkdtemp(`${dataDir}${WORK_INFIX}`);
  await markOwner(work);
  const pgdata = path.join(work, "data");
  const staging = path.join(work, "wal");
  const log = path.join(work, "log");
  await Promise.all([mkdir(pgdata, { mode: 0o700 }), mkdir(staging), mkdir(log)]);
  if (owner) for (const dir of [work, pgdata, staging, log]) await chown(dir, owner.uid, owner.gid);

  const servers: ScratchServer[] = [];
  let stager: WalStager | undefined;
  let socketDir: string | undefined;
  try {
    // Started first: the WAL replay begins with is fetched while the base backup is extracted.
    stager = await startWalStager({
      dir: staging,
      wal: request.wal,
      listing: request.listing,
      segmentSize: physical.walSegmentSize,
      startsAt: {
        timeline: physical.timeline,
        segno: segmentOf(parseLsn(physical.startLsn), physical.walSegmentSize),
      },
      owner,
    });
    context.onPhase(`extracting base backup ${source.backupId}`);
    await extract(source, pgdata, owner, signal);
    await failpoint("physical-restore-extracted", signal);
    const version = (await readFile(path.join(pgdata, "PG_VERSION"), "utf8")).trim();
    if (version !== major) {
      throw new CapsuleError(
        ErrorCode.NotRestorable,
        `${source.backupId} holds a PostgreSQL ${version} data directory, not ${major} as its statefile says`,
      );
    }
    await ensureConfigFiles(pgdata, owner, context.onNotice);
    await writeOwned(path.join(pgdata, "recovery.signal"), "", owner);
    // A Unix socket path is at most 107 bytes: beside a deep DIR it may not fit, so it lives under $TMPDIR then.
    socketDir = work.length < 80 ? work : await mkdtemp(path.join(tmpdir(), "capsule-pitr-sock-"));
    if (owner && socketDir !== work) await chown(socketDir, owner.uid, owner.gid);

    const describeTarget =
      request.target.kind === "latest"
        ? "the end of the WAL in the bucket"
        : request.target.kind === "time"
          ? `just before ${request.target.time}`
          : `just before LSN ${request.target.lsn}`;
    context.onPhase(`replaying WAL to ${describeTarget} with PostgreSQL ${major}`);
    let logOffset = 0;
    let outcome = await recover(request.target);
    let reachedEndInstead = false;
    if (outcome === "target-not-reached") {
      context.onNotice(
        `the target is after the last transaction in the WAL: recovering to the end of the WAL instead (the same data)`,
      );
      reachedEndInstead = true;
      outcome = await recover({ kind: "latest" });
    }
    if (outcome !== "promoted") throw new CapsuleError(ErrorCode.ToolFailed, outcome);

    context.onPhase("stopping the recovered cluster");
    const stop = ["stop", "-D", pgdata, "-m", "fast", "-w"];
    await runToEnd([{ command: path.join(bin, "pg_ctl"), args: stop, ...owned(owner) }], { signal });
    // fsync was off while replaying; the files are made durable once, here (initdb --sync-only).
    const sync = ["--sync-only", "-D", pgdata];
    await runToEnd([{ command: path.join(bin, "initdb"), args: sync, ...owned(owner) }], { signal });
    // It describes the files before recovery; the recovered cluster has moved on.
    await rm(path.join(pgdata, "backup_manifest"), { force: true });
    await failpoint("physical-restore-before-rename", signal);
    throwIfInterrupted(signal);

    const logText = (await readFile(path.join(log, "postgres.log"), "utf8").catch(() => "")).slice(logOffset);
    if (existsSync(dataDir)) await rmdir(dataDir);
    await rename(pgdata, dataDir);
    // The rename itself made durable: after a power cut DIR is there, not a work directory the next restore removes.
    await syncPath(path.dirname(dataDir));
    return {
      dataDir,
      backupId: source.backupId,
      postgresMajor: major,
      target: describeTarget,
      reachedEndInstead,
      ...recoveryReport(logText),
    };

    /** One recovery run to `target`: promoted, the target not reached, or what went wrong. */
    async function recover(target: PhysicalRestoreRequest["target"]): Promise<string> {
      logOffset = (await stat(path.join(log, "postgres.log")).catch(() => undefined))?.size ?? 0;
      const port = await freePort();
      const settings: Record<string, string> = {
        listen_addresses: "",
        unix_socket_directories: socketDir!,
        port: String(port),
        // The source's settings came with its files: it must not archive, accept clients or stream anywhere.
        archive_mode: "off",
        hot_standby: "off",
        fsync: "off",
        logging_collector: "on",
        log_directory: log,
        log_filename: "postgres.log",
        restore_command: stager!.restoreCommand,
        recovery_target_timeline: "latest",
        ...(target.kind === "latest"
          ? {}
          : {
              [target.kind === "time" ? "recovery_target_time" : "recovery_target_lsn"]:
                target.kind === "time" ? postgresTime(target.time) : target.lsn,
              recovery_target_inclusive: "false",
              recovery_target_action: "promote",
            }),
      };
      const server = await startScratchServer({
        command: path.join(bin, "postgres"),
        args: ["-D", pgdata, ...Object.entries(settings).flatMap(([k, v]) => ["-c", `${k}=${v}`])],
        dir: work,
        port,
        owner,
        package: `postgresql-${major}`,
        stopSignal: "INT",
        signal,
        ready: () => Promise.resolve(existsSync(path.join(pgdata, "postmaster.pid"))),
      });
      // Kept until the end: each guard empties the work directory if capsule dies.
      servers.push(server);
      await failpoint("physical-restore-replaying", signal);
      for (;;) {
        throwIfInterrupted(signal);
        const failed = stager!.failure();
        if (failed) throw failed;
        if (!server.running()) {
          const text = (await readFile(path.join(log, "postgres.log"), "utf8").catch(() => "")).slice(
            logOffset,
          );
          if (text.includes(TARGET_NOT_REACHED)) return "target-not-reached";
          return `postgres ${major} stopped during recovery: ${lastProblem(text)}`;
        }
        if ((await serverStatus(pgdata)) === "ready") return "promoted";
        await new Promise((r) => setTimeout(r, 25));
      }
    }
  } catch (error) {
    const state = `: ${dataDir} was not created; the partial restore in ${work} was removed`;
    throw interruptedWith(signal, state, error) ?? error;
  } finally {
    await stager?.stop();
    for (const server of servers) await server.stop();
    await rm(work, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    if (socketDir && socketDir !== work) await rm(socketDir, { recursive: true, force: true });
  }
}

/** `zstd -d | tar -x`, as the postgres account when capsule is root: the files are its. */
async function extract(
  source: ArtifactSource,
  into: string,
  owner: { uid: number; gid: number } | undefined,
  signal: AbortSignal,
): Promise<void> {
  const input = await source.open();
  const tar = { command: "tar", args: ["-x", "-f", "-", "-C", into], package: "tar", ...owned(owner) };
  const done = runToEnd([zstdDecompress(), tar], { input, signal });
  await failpoint("physical-restore-extracting", signal);
  await done;
}

function owned(owner: { uid: number; gid: number } | undefined) {
  return owner ? { owner } : {};
}

async function writeOwned(
  file: string,
  content: string,
  owner: { uid: number; gid: number } | undefined,
): Promise<void> {
  await writeFile(file, content, { mode: 0o600 });
  if (owner) await chown(file, owner.uid, owner.gid);
}

/**
 * A cluster whose configuration lives outside its data directory (Debian's /etc/postgresql) has none in its base
 * backup: postgres would not start. Minimal files are written, and the operator told.
 */
async function ensureConfigFiles(
  pgdata: string,
  owner: { uid: number; gid: number } | undefined,
  notice: (line: string) => void,
): Promise<void> {
  const defaults: Record<string, string> = {
    "postgresql.conf": "# written by capsule: the backed-up cluster kept its configuration elsewhere\n",
    "pg_hba.conf": "# written by capsule: only local connections as the same OS user\nlocal all all peer\n",
    "pg_ident.conf": "",
  };
  for (const [name, content] of Object.entries(defaults)) {
    if (existsSync(path.join(pgdata, name))) continue;
    await writeOwned(path.join(pgdata, name), content, owner);
    notice(`the base backup has no ${name} (the cluster kept it elsewhere): wrote a minimal one`);
  }
}

/** The status line pg_ctl reads from postmaster.pid: `starting`, `standby`, `ready` or `stopping`. */
async function serverStatus(pgdata: string): Promise<string | undefined> {
  const text = await readFile(path.join(pgdata, "postmaster.pid"), "utf8").catch(() => "");
  return text.split("\n")[7]?.trim() || undefined;
}

const STOPPING = /recovery stopping (before [^\n]*)/;
const REDO_DONE = /redo done at ([0-9A-F]+\/[0-9A-F]+)/;
const LAST_TRANSACTION = /last completed transaction was at log time ([^\n]+)/;
const NEW_TIMELINE = /selected new timeline ID: (\d+)/;

function recoveryReport(
  log: string,
): Pick<PhysicalRestoreOutcome, "stoppedAtLsn" | "lastTransactionAt" | "stopReason" | "timeline"> {
  const stopping = STOPPING.exec(log)?.[1];
  const redo = REDO_DONE.exec(log)?.[1];
  const last = LAST_TRANSACTION.exec(log)?.[1]?.trim();
  const timeline = NEW_TIMELINE.exec(log)?.[1];
  return {
    ...(redo ? { stoppedAtLsn: redo } : {}),
    ...(last ? { lastTransactionAt: last } : {}),
    ...(stopping ? { stopReason: `recovery stopped ${stopping}` } : {}),
    ...(timeline ? { timeline: Number(timeline) } : {}),
  };
}

/**
 * The time as the server parses it at startup, before its zone abbreviations are loaded: `Z` is one of them, so it
 * becomes `+00`; a numeric offset stays. Microseconds are kept.
 */
export function postgresTime(time: string): string {
  return time.replace("T", " ").replace(/z$/i, "+00");
}

function lastProblem(log: string): string {
  const lines = log.split("\n").filter((l) => /(FATAL|PANIC|ERROR):/.test(l));
  return lines.at(-1)?.replace(/^.*?(FATAL|PANIC|ERROR):\s*/, "") ?? "see its log";
}

async function assertEmptyOrAbsent(dataDir: string): Promise<void> {
  const entries = await readdir(dataDir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return [];
    if (error.code === "ENOTDIR")
      throw new FieldError(ErrorCode.LocalFile, "toDataDir", `{toDataDir} ${dataDir} is a file`);
    throw error;
  });
  if (entries.length > 0) {
    throw new FieldError(
      ErrorCode.LocalFile,
      "toDataDir",
      `{toDataDir} ${dataDir} is not empty: a point-in-time restore writes a new data directory, never over one`,
    );
  }
  if (!existsSync(path.dirname(dataDir))) {
    throw new FieldError(
      ErrorCode.LocalFile,
      "toDataDir",
      `{toDataDir}: ${path.dirname(dataDir)} does not exist`,
    );
  }
}

/** As root, postgres runs as its own account: every directory above DIR must let it through. */
async function assertTraversable(dir: string, owner: { uid: number; gid: number }): Promise<void> {
  for (let at = dir; ; at = path.dirname(at)) {
    const info = await stat(at);
    const through = info.uid === owner.uid ? 0o100 : info.gid === owner.gid ? 0o010 : 0o001;
    if ((info.mode & through) === 0) {
      throw new FieldError(
        ErrorCode.LocalFile,
        "toDataDir",
        `{toDataDir}: the postgres account cannot enter ${at} (mode ${(info.mode & 0o777).toString(8)}); PostgreSQL ` +
          `runs as postgres when capsule runs as root`,
      );
    }
    if (at === path.dirname(at)) return;
  }
}

function postgresMajor(serverVersion: string | undefined): string {
  const major = /^(\d+)/.exec(serverVersion ?? "")?.[1];
  if (!major) {
    throw new CapsuleError(
      ErrorCode.NotRestorable,
      "the backup's statefile does not record its server version",
    );
  }
  return major;
}

/** The server binaries of exactly `major`: a data directory only opens with its own major version. */
export function postgresBinDir(major: string, root = "/usr/lib/postgresql"): string {
  const bin = path.join(root, major, "bin");
  if (!existsSync(path.join(bin, "postgres"))) {
    throw new CapsuleError(
      ErrorCode.ToolMissing,
      `the backup is of PostgreSQL ${major} and ${bin}/postgres is not installed here: install postgresql-${major}`,
    );
  }
  return bin;
}
