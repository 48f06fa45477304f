/**
 * A physical replication connection (the PostgreSQL manual, "Streaming Replication Protocol") over node-postgres:
 * the `replication=true` startup parameter makes the backend a walsender, the replication commands run as simple
 * queries, and START_REPLICATION's CopyBoth mode is read from pg's connection (`copyData`) and written with
 * `sendCopyFromChunk`, as pg-logical-replication does. Beside sql.ts the one other file that imports `pg`: sql.ts
 * opens ordinary sessions, this one walsender sessions, and they share nothing but the TLS policy.
 *
 * A server that is not set up for streaming is told apart from one that is merely away: the first is a
 * `ReplicationSetupError` naming what the server needs, the second a `ReplicationUnavailableError` worth a retry.
 */
import pg from "pg";
import { CapsuleError, ErrorCode } from "../../domain/errors.js";
import { formatLsn, type Lsn, parseLsn } from "../../domain/wal.js";
import { redact } from "../../redact.js";
import { socketFailure } from "../../util/socket-error.js";
import { describeConnection, type PgConnection } from "./connection.js";
import {
  encodeStandbyStatus,
  parseSegmentSize,
  parseServerCopyMessage,
  type ServerCopyMessage,
  type StandbyStatus,
} from "./replication-messages.js";
import { clientConfig, connected } from "./sql.js";

/** A column of a replication command's row: pg hands text columns over as strings. */
function text(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** What the server must be given before it streams WAL to capsule; each names its remedy. */
export type ReplicationNeed =
  "replication-role" | "wal-senders" | "wal-senders-busy" | "wal-level" | "replication-slots" | "pg-hba";

/** The server refuses streaming until its configuration changes: retrying does not help. */
export class ReplicationSetupError extends CapsuleError {
  constructor(
    readonly need: ReplicationNeed,
    message: string,
  ) {
    super(ErrorCode.ReplicationNotSetUp, message);
    this.name = "ReplicationSetupError";
  }
}

/** The server is away, restarting, or the slot is busy: the streamer waits and connects again. */
export class ReplicationUnavailableError extends CapsuleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.DatabaseError, message, options);
    this.name = "ReplicationUnavailableError";
  }
}

export interface SystemIdentity {
  /** `system_identifier`, as text: a 64-bit number. */
  readonly systemIdentifier: string;
  readonly timeline: number;
  /** The server's flushed WAL end when asked. */
  readonly walEnd: Lsn;
}

export interface SlotPosition {
  /** Where the slot holds WAL from; undefined for a slot that has not reserved any. */
  readonly restartLsn: Lsn | undefined;
  /** The timeline of `restartLsn`, when the server says (PostgreSQL 15+). */
  readonly restartTimeline: number | undefined;
}

/** How a timeline that is not the server's newest ended: the next timeline and where it branched off. */
export interface TimelineEnd {
  readonly nextTimeline: number;
  readonly switchLsn: Lsn;
}

/** One START_REPLICATION in CopyBoth mode. */
export interface ReplicationStream {
  /** Sends a Standby Status Update. */
  sendStatus(status: StandbyStatus): void;
  /** Stops reading from the socket (backpressure: the server blocks on its side); messages already read still arrive. */
  pause(): void;
  resume(): void;
  /**
   * Settles when streaming ends: with the next timeline when the server finished an old one, with undefined after
   * `stop()`, or rejects when the connection or the server fails.
   */
  readonly ended: Promise<TimelineEnd | undefined>;
  /** Ends the copy from our side (CopyDone) and waits for the server to finish it. */
  stop(): Promise<void>;
}

export class ReplicationClient {
  private constructor(
    private readonly client: pg.Client,
    private readonly conn: PgConnection,
  ) {}

  /** Opens a walsender session; setup problems and an absent server are told apart (see the classes above). */
  static async connect(conn: PgConnection, applicationName = "capsule-wal"): Promise<ReplicationClient> {
    const config = {
      ...clientConfig(conn, conn.database, applicationName),
      keepAlive: true,
      // pg sends it as the `replication` startup parameter: a physical walsender session.
      replication: "true",
    } as pg.ClientConfig;
    const self = new ReplicationClient(new pg.Client(config), conn);
    await connected(self.client, (error) => self.translate(error));
    return self;
  }

  async identifySystem(): Promise<SystemIdentity> {
    const row = (await this.command("IDENTIFY_SYSTEM"))[0]!;
    return {
      systemIdentifier: text(row["systemid"]),
      timeline: Number(row["timeline"]),
      walEnd: parseLsn(text(row["xlogpos"])),
    };
  }

  async segmentSize(): Promise<number> {
    return parseSegmentSize(text((await this.command("SHOW wal_segment_size"))[0]!["wal_segment_size"]));
  }

  async serverVersion(): Promise<string> {
    return String((await this.command("SHOW server_version"))[0]!["server_version"]);
  }

  /**
   * The slot's position (READ_REPLICATION_SLOT, PostgreSQL 15+; older servers through pg_replication_slots), or
   * undefined when there is no such slot. A logical slot of that name is refused.
   */
  async readSlot(name: string): Promise<SlotPosition | undefined> {
    let row: Record<string, unknown> | undefined;
    try {
      row = (await this.command(`READ_REPLICATION_SLOT ${name}`))[0];
    } catch (error) {
      if ((error as { code?: string }).code !== "42601") throw error;
      return this.readSlotBySql(name);
    }
    if (!row || row["slot_type"] === null) return undefined;
    if (row["slot_type"] !== "physical") {
      throw new CapsuleError(
        ErrorCode.Refused,
        `replication slot "${name}" on ${this.where()} is a ${text(row["slot_type"])} slot: name another one with {slot}`,
      );
    }
    return {
      restartLsn: row["restart_lsn"] === null ? undefined : parseLsn(text(row["restart_lsn"])),
      restartTimeline: row["restart_tli"] === null ? undefined : Number(row["restart_tli"]),
    };
  }

  /** A physical slot that holds WAL from now on (RESERVE_WAL), so none is recycled before it is streamed. */
  async createSlot(name: string): Promise<void> {
    try {
      await this.command(`CREATE_REPLICATION_SLOT ${name} PHYSICAL RESERVE_WAL`);
    } catch (error) {
      // Created by someone else between our read and this: it is there, which is all we wanted.
      if ((error as { code?: string }).code === "42710") return;
      throw error;
    }
  }

  async dropSlot(name: string): Promise<void> {
    await this.command(`DROP_REPLICATION_SLOT ${name}`);
  }

  /** The history file of `timeline` (TIMELINE_HISTORY), as PostgreSQL names and writes it. */
  async timelineHistory(timeline: number): Promise<{ fileName: string; content: Buffer }> {
    const row = (await this.command(`TIMELINE_HISTORY ${timeline}`))[0]!;
    const content = row["content"];
    return {
      fileName: text(row["filename"]),
      content: Buffer.isBuffer(content) ? content : Buffer.from(String(content)),
    };
  }

  /**
   * START_REPLICATION of `slot` from `start` on `timeline`. Every CopyData message is handed to `onMessage` as it
   * is read; the caller pauses the stream while it cannot take more.
   */
  startStreaming(
    slot: string,
    start: Lsn,
    timeline: number,
    onMessage: (message: ServerCopyMessage) => void,
  ): ReplicationStream {
    const connection = this.client.connection as pg.Connection & {
      sendCopyFromChunk(chunk: Buffer): void;
      endCopyFrom(): void;
    };
    let copying = true;
    let stopping = false;
    let failure: Error | undefined;
    const onCopyData = (message: { chunk: Buffer }) => {
      if (!copying || failure !== undefined) return;
      try {
        onMessage(parseServerCopyMessage(message.chunk));
      } catch (error) {
        // A bad message or a refusal from the consumer ends the stream: the connection is closed below.
        failure = error instanceof Error ? error : new Error(String(error));
        connection.stream.destroy();
      }
    };
    // The server ends an old timeline with CopyDone; answering with ours makes it send where the next one starts.
    const onCopyDone = () => {
      if (!copying) return;
      copying = false;
      if (!stopping) connection.endCopyFrom();
    };
    connection.on("copyData", onCopyData);
    connection.on("copyDone", onCopyDone);
    const query = this.client.query(
      `START_REPLICATION SLOT ${slot} PHYSICAL ${formatLsn(start)} TIMELINE ${timeline}`,
    ) as Promise<pg.QueryResult | pg.QueryResult[]>;
    const ended = query.then(
      (result) => {
        detach();
        if (failure !== undefined) throw failure;
        if (stopping) return undefined;
        const row = (Array.isArray(result) ? result : [result])
          .flatMap((r) => r.rows as Array<Record<string, unknown>>)
          .find((r) => r["next_tli"] !== undefined);
        if (!row) return undefined;
        return {
          nextTimeline: Number(row["next_tli"]),
          switchLsn: parseLsn(text(row["next_tli_startpos"])),
        };
      },
      (error: unknown) => {
        detach();
        throw failure ?? this.translate(error);
      },
    );
    const detach = () => {
      connection.off("copyData", onCopyData);
      connection.off("copyDone", onCopyDone);
    };
    return {
      sendStatus: (status) => {
        if (copying) connection.sendCopyFromChunk(encodeStandbyStatus(status));
      },
      pause: () => connection.stream.pause(),
      resume: () => connection.stream.resume(),
      ended,
      stop: async () => {
        if (stopping) return;
        stopping = true;
        connection.stream.resume();
        if (copying) connection.endCopyFrom();
        copying = false;
        await ended.catch(() => undefined);
      },
    };
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }

  private async command(text: string): Promise<Array<Record<string, unknown>>> {
    try {
      const result = (await this.client.query(text)) as pg.QueryResult | pg.QueryResult[];
      return (Array.isArray(result) ? result.at(-1)! : result).rows as Array<Record<string, unknown>>;
    } catch (error) {
      if ((error as { code?: string }).code === "42601") throw error;
      throw this.translate(error);
    }
  }

  private async readSlotBySql(name: string): Promise<SlotPosition | undefined> {
    const client = await connected(new pg.Client(clientConfig(this.conn, this.conn.database)), (error) =>
      this.translate(error),
    );
    try {
      const { rows } = await client.query<{ slot_type: string; restart_lsn: string | null }>(
        "SELECT slot_type, restart_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
        [name],
      );
      const row = rows[0];
      if (!row) return undefined;
      if (row.slot_type !== "physical") {
        throw new CapsuleError(
          ErrorCode.Refused,
          `replication slot "${name}" on ${this.where()} is a ${row.slot_type} slot: name another one with {slot}`,
        );
      }
      return {
        restartLsn: row.restart_lsn ? parseLsn(row.restart_lsn) : undefined,
        restartTimeline: undefined,
      };
    } catch (error) {
      throw this.translate(error);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  private where(): string {
    return describeConnection(this.conn);
  }

  /** A driver or server error as one line: what the server needs, or that it is away. */
  translate(error: unknown): Error {
    if (error instanceof CapsuleError) return error;
    const e = error as { code?: string; message?: string };
    const message = e.message ?? String(error);
    const where = this.where();
    const user = this.conn.user;
    if (e.code === "42501" && /replication/i.test(message)) {
      return new ReplicationSetupError(
        "replication-role",
        `${where}: the role "${user}" may not stream WAL: ALTER ROLE "${user}" REPLICATION (or use a role that has it)`,
      );
    }
    if (
      /max_wal_senders \(currently 0\)|max_wal_senders.*is 0|WAL senders? (is|are) disabled/i.test(message)
    ) {
      return new ReplicationSetupError(
        "wal-senders",
        `${where}: max_wal_senders is 0: set it to at least 1 more than the standbys use (and wal_level replica), then restart the server`,
      );
    }
    if (e.code === "53300" && /max_wal_senders/i.test(message)) {
      const current = /currently (\d+)/.exec(message)?.[1];
      return new ReplicationSetupError(
        "wal-senders-busy",
        `${where}: all max_wal_senders${current ? ` (${current})` : ""} are in use: raise max_wal_senders by one for capsule, then restart the server`,
      );
    }
    if (/wal_level/i.test(message)) {
      return new ReplicationSetupError(
        "wal-level",
        `${where}: wal_level is minimal: set wal_level replica (and max_wal_senders ≥ 1), then restart the server`,
      );
    }
    if (/max_replication_slots|all replication slots are in use/i.test(message)) {
      return new ReplicationSetupError(
        "replication-slots",
        `${where}: no replication slot is free: raise max_replication_slots by one for capsule, then restart the server`,
      );
    }
    if (e.code === "28000" && /pg_hba\.conf/i.test(message) && /replication/i.test(message)) {
      const host = /host "([^"]+)"/.exec(message)?.[1];
      return new ReplicationSetupError(
        "pg-hba",
        `${where}: pg_hba.conf has no replication line for user "${user}"${host ? ` from ${host}` : ""}: ` +
          `add "host replication ${user} ${host ? `${host}/32` : "ADDRESS"} scram-sha-256" and reload the server`,
      );
    }
    if (e.code === "28P01" || e.code === "28000") {
      return new CapsuleError(ErrorCode.DatabaseError, `${where}: authentication failed for user "${user}"`);
    }
    if (
      /not in this server's history|ahead of the WAL flush position|has already been removed/i.test(message)
    ) {
      return new CapsuleError(
        ErrorCode.Refused,
        `${where}: ${redact(message)}: the bucket's WAL for this target does not continue on this server; ` +
          "stream it under another target",
      );
    }
    if (e.code === "55006") {
      return new ReplicationUnavailableError(
        `${where}: ${redact(message)} (another streamer holds the slot)`,
      );
    }
    // Shutting down, starting up, in recovery restart, or gone: all pass.
    if (e.code?.startsWith("57P") || e.code === "08006" || e.code === "08003") {
      return new ReplicationUnavailableError(`${where}: ${redact(message)}`, { cause: error });
    }
    const failure = socketFailure(error);
    if (
      failure?.kind === "unreachable" ||
      failure?.kind === "reset" ||
      /terminated|timeout|ECONN|EPIPE/i.test(message)
    ) {
      return new ReplicationUnavailableError(`${where}: ${failure?.phrase ?? message}`, { cause: error });
    }
    return new CapsuleError(ErrorCode.DatabaseError, redact(`${where}: ${message}`));
  }
}
