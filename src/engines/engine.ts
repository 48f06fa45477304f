/**
 * The seam every engine implements (docs/adr/0018). Above it, one backup, restore, verify and prune flow (runtime/)
 * and one command per verb (commands/) serve every engine alike; below it, each engine folder knows its server and
 * its tools and nothing of flags, buckets or statefile protocols. Nothing outside `engines/` switches on an engine
 * name: it asks the registry (registry.ts) for the engine and calls this interface.
 *
 * Fields, not flags: an engine reads its settings from a plain record of named fields (`port`, `toDatabase`) and
 * names fields in its errors (`FieldError`); the CLI fills the record from its flags and shows a field as its flag,
 * `capsule run` fills it from CAPSULE_TARGET and its own flags.
 */
import type { ArtifactSink, ArtifactSource } from "../domain/artifact.js";
import type { EngineName } from "../domain/backup.js";
import type { TargetConnection } from "../domain/connection.js";
import type { Artifact, Statefile } from "../domain/statefile.js";
import type { RecoveryTarget } from "../domain/recovery-target.js";
import type { PhysicalBackupInfo, WalListing, WalSink, WalSource } from "../domain/wal.js";
import type { ToolCommand } from "./process-pipeline.js";

/** Named settings, as the CLI's flags or `capsule run`'s target fill them. Unset fields are `undefined`. */
export type Fields = Readonly<Record<string, unknown>>;

/** What every long-running engine call is given: where to report progress, and when to stop. */
export interface EngineContext {
  /** What the engine is doing now ("dumping", "verifying row counts"); shown and recorded. */
  readonly onPhase: (phase: string) => void;
  /** Aborted by SIGINT/SIGTERM (or a run that must stop): the engine stops its tools and leaves the target whole. */
  readonly signal: AbortSignal;
  /** A line for the operator that is not a phase (an unverified TLS connection the fields asked for). */
  readonly onNotice?: (line: string) => void;
}

/** A restore also reports what it found that is not a phase (leftovers of an earlier run, …). */
export interface RestoreContext extends EngineContext {
  readonly onNotice: (line: string) => void;
}

export interface EngineBackupResult {
  readonly artifact: Artifact;
  readonly fingerprint?: object;
  readonly source?: Partial<Statefile["source"]>;
  readonly tool?: Record<string, string>;
  /** A physical backup's place in the WAL (PostgreSQL `--create --physical`): the statefile's `physical`. */
  readonly physical?: PhysicalBackupInfo;
}

/** What a long-running stream reports: a logger's shape, so the runtime passes its own. */
export interface StreamLog {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

/** Where and how `--stream-wal` streams, decided above the seam. */
export interface WalStreamRequest {
  /** The target the WAL is kept under: names the default replication slot. */
  readonly target: string;
  readonly sink: WalSink;
  /** What the sink is, for messages (`s3://bucket/prefix …/wal/shop`). */
  readonly sinkDescription: string;
  readonly fields: Fields;
}

/** What `--stream-wal` is given besides the request: when to stop, where to log, and a sign of life. */
export interface WalStreamContext {
  readonly signal: AbortSignal;
  readonly log: StreamLog;
  /**
   * Called each time round the streamer's loop, also while it waits out a store or server outage: a liveness
   * probe's heartbeat (plan/run-contract.ts STREAM_WAL_HEARTBEAT), so only a streamer that hangs is restarted.
   */
  readonly alive?: (() => void) | undefined;
}

/** What a stream did before it was stopped. */
export interface WalStreamOutcome {
  readonly line: string;
  readonly document: object;
}

/** What a restore left, for every surface: lines for the operator, one line for a log, a document for `-o json`. */
export interface RestoreResult {
  /** The first line says what now holds the backup's data; more lines say what else the operator should know. */
  readonly lines: readonly string[];
  /** The engine's own account of the outcome (tables and rows, keys, indices), as `-o json|yaml` prints it. */
  readonly document: object;
}

/** A restore decided before anything is touched: where it goes and what it will do, for the confirmation and the record. */
export interface RestorePlan {
  /** Where the data goes, without credentials (`postgresql://app@db:5432/shop`). */
  readonly to: string;
  /** The question an operator confirms (`Restore … as …? (the current database is kept under another name)`). */
  readonly question: string;
  /** Runs the restore; on failure or interruption the target is left as the engine's guarantees say (ADR 0015). */
  run(source: ArtifactSource, context: RestoreContext): Promise<RestoreResult>;
}

export type { RecoveryTarget };

/** A physical base backup and the WAL of its target, as runtime/point-in-time.ts chose them (docs/adr/0021). */
export interface PointInTimeSource {
  readonly source: ArtifactSource;
  readonly physical: PhysicalBackupInfo;
  readonly wal: WalSource;
  readonly listing: WalListing;
}

/** What a restore drill proved. */
export interface DrillResult {
  readonly method: string;
  readonly details: string;
}

/** Something a killed run left behind (a scratch database, a throwaway cluster), named for `--check`. */
export interface Leftover {
  /** One line saying what it is, where, and how it goes (`scratch database … on … was left by …`). */
  readonly found: string;
  /** One line saying it is gone, after `remove()`. */
  readonly removed: string;
  /** Removes it; only called when the operator said yes. */
  remove(): Promise<void>;
}

/** A flag of one engine's: declared here, so the CLI shows and checks it without knowing the engine. */
export interface EngineFlag {
  /** The field it fills (`toDatabase`); the flag is its kebab-case form (`--to-database`). */
  readonly field: string;
  readonly kind: "string" | "boolean";
  readonly description: string;
  /**
   * The modes that take it: a verb (`restore`), or a verb with a modifier flag (`restore --in-cluster`,
   * `verify --verify-server`). A flag given to any other mode is refused.
   */
  readonly modes: readonly string[];
  /**
   * A modifier of this verb: given, it changes what the verb takes (`--verify-server` makes `--verify` drill on the
   * server the connection flags name), and the flags of the mode `<verb> --<flag>` apply.
   */
  readonly modifies?: string;
}

/** Flags every one of `modes` takes (an engine's connection flags), declared without repeating the modes. */
export function flagsFor(
  modes: readonly string[],
  flags: ReadonlyArray<Omit<EngineFlag, "modes">>,
): EngineFlag[] {
  return flags.map((flag) => ({ ...flag, modes }));
}

/** How the CLI introduces an engine (`capsule pg --help`). */
export interface EngineUsage {
  readonly description: string;
  /** What `--target` defaults to, for its help (`the database`). */
  readonly targetDefault: string;
  readonly details: string;
  readonly examples: ReadonlyArray<[string, string]>;
}

/**
 * One engine. `Conn` is where its server is (host, port, credentials from the environment), opaque to everyone
 * else: they only pass it back.
 */
export interface Engine<Conn = unknown> {
  readonly name: EngineName;
  /** Its word on the command line: `capsule pg`. */
  readonly command: string;
  readonly usage: EngineUsage;
  /** Every flag of its own, with the modes that take it. */
  readonly flags: readonly EngineFlag[];

  /** The server the fields name (falling back to the engine's standard environment variables). */
  connect(fields: Fields, env: NodeJS.ProcessEnv): Conn;
  /** A compiled target's server, inside its pod (the pod's environment holds the secrets). */
  connectTarget(connection: TargetConnection, env: NodeJS.ProcessEnv): Conn;
  /** Where the server is, for messages: never a credential. */
  describe(conn: Conn): string;
  /** A warning when TLS to the server is not verified (the CLI shows it before it connects), else undefined. */
  insecureWarning(conn: Conn): string | undefined;

  /** The target name a backup records when none is given (`shop` for database shop). */
  defaultTarget(conn: Conn): string;
  /** Where a backup's data came from, as the statefile records it. */
  source(conn: Conn): Statefile["source"];
  /** Checks the backup fields before anything is contacted. */
  checkBackup?(fields: Fields): void;
  /** Streams one backup into `sink`; constant memory, no temp file. */
  backup(conn: Conn, sink: ArtifactSink, fields: Fields, context: EngineContext): Promise<EngineBackupResult>;
  /** What a finished backup holds, for the operator (`12 keys`, `3 indices, 1200 documents`); warnings after. */
  describeBackup(statefile: Statefile): { summary: string; warnings: string[] };

  /** Checks the restore fields before anything is contacted (contradicting modes, malformed values). */
  checkRestore?(fields: Fields): void;
  /**
   * The restore the fields ask for, decided and checked before anything is touched. `statefile` is the backup's:
   * a restore may default to what it records (the source database).
   */
  planRestore(conn: Conn, statefile: Statefile, fields: Fields, env: NodeJS.ProcessEnv): RestorePlan;
  /** Proves a backup by restoring it somewhere it cannot harm production; leaves nothing behind, also on failure. */
  drill(
    source: ArtifactSource,
    fields: Fields,
    env: NodeJS.ProcessEnv,
    context: EngineContext,
  ): Promise<DrillResult>;

  /**
   * A point-in-time restore into a new data directory (PostgreSQL `--restore --physical --to-data-dir`): the base
   * backup, then its WAL replayed to `target`. Atomic: the directory is written whole or not at all.
   */
  restorePointInTime?(
    from: PointInTimeSource,
    target: RecoveryTarget,
    fields: Fields,
    context: RestoreContext,
  ): Promise<RestoreResult>;
  /** The drill of a physical backup: restored with its WAL to the newest point into a throwaway cluster, checked. */
  drillPointInTime?(from: PointInTimeSource, context: EngineContext): Promise<DrillResult>;

  /**
   * What killed runs left that this engine can find: on this machine always, on a server when the fields name one.
   * Resolves with nothing to report when the engine leaves nothing behind.
   */
  findLeftovers?(fields: Fields, env: NodeJS.ProcessEnv): Promise<Leftover[]>;
  /** Puts a server back that a killed restore left in an intermediate state (`capsule redis --recover`). */
  recover?(conn: Conn, context: Pick<EngineContext, "onPhase">): Promise<string>;
  /** Checks the stream fields (`--slot`) before anything is contacted. */
  checkStreamWal?(fields: Fields, target: string): void;
  /**
   * Streams the server's write-ahead log into `request.sink` until `context.signal` fires (PostgreSQL
   * `--stream-wal`); resolves once what was received is durable. Only engines with a WAL implement it.
   */
  streamWal?(conn: Conn, request: WalStreamRequest, context: WalStreamContext): Promise<WalStreamOutcome>;
  /** How `--download` hands the artifact out: decoded for the engine's own tools unless `raw` is set. */
  downloadDecoder?(fields: Fields): { decode: ToolCommand; what: string } | undefined;
}
