/**
 * capsule's side of a restore: a replication master that serves one RDB, once. The target Redis, told
 * `REPLICAOF <capsule> <port>`, connects and runs the replica handshake (PING, AUTH when it has a masterauth,
 * REPLCONF…, PSYNC); capsule answers `+FULLRESYNC <replid> 0` and sends the RDB as `$<length>\r\n<bytes>`, then
 * keeps the link alive with PINGs (as a real master does every repl-ping-replica-period) until it is closed.
 *
 * Safety: the last chunk of the RDB is held back until the source stream (checked against its sha256) has ended
 * cleanly, so a target never receives a complete payload that failed verification — a replica that loads to disk
 * first keeps its old data when the transfer is cut. With a token, a connection must AUTH with it before PSYNC:
 * the port serves a backup and must not serve it to anyone else.
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import type { Readable } from "node:stream";
import { CapsuleError, ErrorCode, messageOf } from "../../domain/errors.js";
import { failpoint } from "../../util/failpoint.js";
import { replyText, RespReader, type RespValue } from "./resp.js";

/** How often a master pings its replicas (Redis' repl-ping-replica-period default). */
const PING_INTERVAL_MS = 10_000;
const PING = Buffer.from("*1\r\n$4\r\nPING\r\n");

export interface ServeOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** When set, a replica must AUTH with it (its masterauth) before it is served. */
  readonly token?: string;
  readonly sizeBytes: number;
  /** Opens the RDB; called once, for the first replica that asks for a full sync. */
  readonly open: () => Promise<Readable>;
  /** Only for the fault tests' failpoint mid-transfer: an interruption releases it. */
  readonly signal?: AbortSignal;
}

export class ReplicationMaster {
  private readonly sockets = new Set<Socket>();
  private served = false;
  private sentBytes = 0;
  private completed = false;
  private failure: Error | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  /** Connections accepted, for diagnostics. */
  connections = 0;
  /** True once a replica has asked for a sync. */
  syncRequested = false;
  readonly replid = randomBytes(20).toString("hex");

  private constructor(
    private readonly server: Server,
    private readonly options: ServeOptions,
    readonly port: number,
  ) {}

  static listen(options: ServeOptions): Promise<ReplicationMaster> {
    return new Promise((resolve, reject) => {
      const server = createServer();
      server.once("error", (error: NodeJS.ErrnoException) =>
        reject(
          new CapsuleError(
            ErrorCode.Config,
            `cannot listen on ${options.host}:${options.port} for the replica (${error.code ?? error.message}); ` +
              `set --listen-host/--listen-port`,
          ),
        ),
      );
      server.listen({ host: options.host, port: options.port }, () => {
        const address = server.address();
        const port = typeof address === "object" && address ? address.port : options.port;
        const master = new ReplicationMaster(server, options, port);
        server.on("connection", (socket) => master.accept(socket));
        resolve(master);
      });
    });
  }

  /** Bytes of the RDB written to the replica so far. */
  get bytesSent(): number {
    return this.sentBytes;
  }

  /** The whole RDB was written, and its sha256 matched. */
  get transferred(): boolean {
    return this.completed;
  }

  /** Set when serving failed (the source stream failed, the replica hung up mid-transfer, or asked twice). */
  get error(): Error | undefined {
    return this.failure;
  }

  /** Replicas connected right now. */
  get connected(): number {
    return this.sockets.size;
  }

  async close(): Promise<void> {
    if (this.pingTimer) clearInterval(this.pingTimer);
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    this.connections++;
    this.sockets.add(socket);
    socket.setNoDelay(true);
    const reader = new RespReader();
    let authenticated = this.options.token === undefined;
    let streaming = false;
    socket.on("error", () => undefined);
    socket.on("close", () => {
      this.sockets.delete(socket);
      if (streaming && !this.completed) {
        this.fail(
          new CapsuleError(
            ErrorCode.DatabaseError,
            `the target closed the replication link after ${this.sentBytes} of ${this.options.sizeBytes} bytes`,
          ),
        );
      }
    });
    socket.on("data", (chunk: Buffer) => {
      reader.push(chunk);
      for (;;) {
        let command: RespValue | undefined;
        try {
          command = reader.next();
        } catch {
          socket.destroy();
          return;
        }
        if (command === undefined) return;
        const args = Array.isArray(command) ? command.map(replyText) : [];
        const name = (args[0] ?? "").toUpperCase();
        switch (name) {
          case "PING":
            if (!streaming) socket.write("+PONG\r\n");
            break;
          case "AUTH":
            if (this.options.token === undefined || args.at(-1) === this.options.token) {
              authenticated = true;
              socket.write("+OK\r\n");
            } else socket.write("-WRONGPASS invalid username-password pair or user is disabled.\r\n");
            break;
          case "REPLCONF":
            // Replicas send REPLCONF ACK once a second after the sync; a master never answers those.
            if ((args[1] ?? "").toUpperCase() !== "ACK") socket.write("+OK\r\n");
            break;
          case "PSYNC":
          case "SYNC":
            if (!authenticated) {
              socket.write("-NOAUTH Authentication required.\r\n");
              break;
            }
            streaming = true;
            this.syncRequested = true;
            void this.serve(socket, name === "PSYNC");
            break;
          default:
            if (!streaming)
              socket.write(`-ERR capsule serves a restore here; ${name || "this"} is not supported\r\n`);
        }
      }
    });
  }

  private async serve(socket: Socket, psync: boolean): Promise<void> {
    if (this.served) {
      // The replica came back for a second sync: it could not load the first one.
      socket.write("-ERR capsule serves its backup once\r\n");
      socket.destroy();
      this.fail(
        new CapsuleError(
          ErrorCode.DatabaseError,
          "the target asked for the backup again after receiving it: it could not load the RDB " +
            "(see the target's log: an RDB version it does not know, too few databases, a module it lacks, or no " +
            "disk space for the transfer)",
        ),
      );
      return;
    }
    this.served = true;
    if (psync) socket.write(`+FULLRESYNC ${this.replid} 0\r\n`);
    socket.write(`$${this.options.sizeBytes}\r\n`);
    let source: Readable;
    try {
      source = await this.options.open();
    } catch (error) {
      socket.destroy();
      this.fail(error as Error);
      return;
    }
    let held: Buffer | undefined;
    try {
      for await (const chunk of source as AsyncIterable<Buffer>) {
        if (held) {
          await this.write(socket, held);
          // Part of the RDB is on the target, the rest is not: where an interruption must leave its old keys.
          if (this.sentBytes === held.length)
            await failpoint("redis-restore-mid-transfer", this.options.signal);
        }
        held = chunk;
      }
      // The source ended cleanly: its sha256 matched. Only now does the target get the last bytes.
      if (held) await this.write(socket, held);
      this.completed = true;
      this.pingTimer = setInterval(() => {
        for (const s of this.sockets) s.write(PING);
      }, PING_INTERVAL_MS);
      this.pingTimer.unref();
    } catch (error) {
      source.destroy();
      socket.destroy();
      this.fail(error instanceof Error ? error : new Error(messageOf(error)));
    }
  }

  private write(socket: Socket, chunk: Buffer): Promise<void> {
    if (socket.destroyed) {
      return Promise.reject(
        new CapsuleError(
          ErrorCode.DatabaseError,
          `the target closed the replication link after ${this.sentBytes} of ${this.options.sizeBytes} bytes`,
        ),
      );
    }
    this.sentBytes += chunk.length;
    if (socket.write(chunk)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onDrain = () => {
        socket.off("close", onClose);
        resolve();
      };
      const onClose = () => {
        socket.off("drain", onDrain);
        reject(
          new CapsuleError(
            ErrorCode.DatabaseError,
            `the target closed the replication link after ${this.sentBytes} of ${this.options.sizeBytes} bytes`,
          ),
        );
      };
      socket.once("drain", onDrain);
      socket.once("close", onClose);
    });
  }

  private fail(error: Error): void {
    this.failure ??= error;
  }
}
