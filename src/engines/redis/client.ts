/**
 * The Redis client adapter: a minimal RESP2 client over node:net (the only file that opens sockets to a Redis
 * server). Commands are pipelined in order; a connection can be detached into a raw socket for the replication
 * stream, which no general-purpose client exposes. Errors become one line that names the server, never the password.
 */
import { connect as netConnect, isIP, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { CapsuleError, ErrorCode } from "../../domain/errors.js";
import { redact } from "../../redact.js";
import { socketFailure } from "../../util/socket-error.js";
import { describeConnection, type RedisConnection } from "./connection.js";
import { parseInfo } from "./info.js";
import { encodeCommand, replyText, RespError, RespReader, type RespValue } from "./resp.js";

const CONNECT_TIMEOUT_MS = 10_000;
/** How long a command may wait for its reply, by default. */
const REPLY_TIMEOUT_MS = 30_000;

interface Pending {
  readonly command: string;
  resolve(value: RespValue): void;
  reject(error: Error): void;
}

export class RedisClient {
  private readonly reader = new RespReader();
  private readonly pending: Pending[] = [];
  private failure: Error | undefined;
  private detached = false;

  private constructor(
    private readonly socket: Socket,
    readonly conn: RedisConnection,
    private readonly replyTimeoutMs: number,
  ) {
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", (error) => this.fail(translateRedisError(error, conn)));
    socket.on("close", () =>
      this.fail(
        new CapsuleError(
          ErrorCode.DatabaseError,
          `${describeConnection(conn)}: the server closed the connection`,
        ),
      ),
    );
    socket.on("timeout", () =>
      socket.destroy(
        new CapsuleError(
          ErrorCode.DatabaseError,
          `${describeConnection(conn)}: no reply within ${Math.round(replyTimeoutMs / 1000)} s`,
        ),
      ),
    );
  }

  /**
   * Connects and authenticates (AUTH user password, or AUTH password for the default user). `replyTimeoutMs`
   * bounds the wait for each reply (a server busy flushing a large dataset may need longer than the default).
   */
  static async connect(
    conn: RedisConnection,
    options: { replyTimeoutMs?: number } = {},
  ): Promise<RedisClient> {
    const socket = await openSocket(conn);
    const client = new RedisClient(socket, conn, options.replyTimeoutMs ?? REPLY_TIMEOUT_MS);
    if (conn.password !== undefined) {
      try {
        await client.call(...(conn.user ? ["AUTH", conn.user, conn.password] : ["AUTH", conn.password]));
      } catch (error) {
        client.close();
        throw error;
      }
    } else if (conn.user) {
      client.close();
      throw new CapsuleError(
        ErrorCode.Config,
        `${describeConnection(conn)}: --user ${conn.user} needs a password (REDISCLI_AUTH or --password-env)`,
      );
    }
    return client;
  }

  /** The local address of this connection: what the server sees capsule as, on the route that reaches it. */
  get localAddress(): string | undefined {
    return this.socket.localAddress;
  }

  /** Sends one command; resolves with its reply, rejects with a `CapsuleError` on an error reply. */
  call(...args: Array<string | Buffer>): Promise<RespValue> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.detached) return Promise.reject(new Error("RedisClient: call after detach"));
    const command = String(args[0]).toUpperCase();
    return new Promise<RespValue>((resolve, reject) => {
      this.pending.push({ command, resolve, reject });
      this.socket.setTimeout(this.replyTimeoutMs);
      this.socket.write(encodeCommand(args));
    });
  }

  /** A command whose reply is text (INFO, CONFIG SET's OK…). */
  async text(...args: string[]): Promise<string> {
    return replyText(await this.call(...args));
  }

  /** `INFO <section>` as fields. */
  async info(...sections: string[]): Promise<Map<string, string>> {
    return parseInfo(await this.text("INFO", ...sections));
  }

  /**
   * Hands the socket over for raw use (the replication stream), with any bytes already read past the last reply.
   * Only when no command is waiting for its reply.
   */
  detach(): { socket: Socket; buffered: Buffer } {
    if (this.pending.length > 0) throw new Error("RedisClient: detach with commands in flight");
    this.detached = true;
    this.socket.removeAllListeners("data");
    this.socket.removeAllListeners("close");
    this.socket.removeAllListeners("timeout");
    this.socket.removeAllListeners("error");
    this.socket.setTimeout(0);
    return { socket: this.socket, buffered: this.reader.takeRemainder() };
  }

  close(): void {
    if (this.detached) return;
    this.failure ??= new CapsuleError(ErrorCode.DatabaseError, `${describeConnection(this.conn)}: closed`);
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.reader.push(chunk);
    for (;;) {
      let value: RespValue | undefined;
      try {
        value = this.reader.next();
      } catch (error) {
        this.socket.destroy(error as Error);
        return;
      }
      if (value === undefined) break;
      const waiting = this.pending.shift();
      if (!waiting) continue; // nothing asked for it (a server push); ignore
      if (this.pending.length === 0) this.socket.setTimeout(0);
      if (value instanceof RespError) waiting.reject(replyError(value, waiting.command, this.conn));
      else waiting.resolve(value);
    }
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const waiting of this.pending.splice(0)) waiting.reject(this.failure);
  }
}

/** Runs `work` with a connected client and always closes it. */
export async function withRedis<T>(
  conn: RedisConnection,
  work: (client: RedisClient) => Promise<T>,
): Promise<T> {
  const client = await RedisClient.connect(conn);
  try {
    return await work(client);
  } finally {
    client.close();
  }
}

/** A TCP (or TLS) connection to the server, with a bounded connect time. */
export function openSocket(conn: RedisConnection): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = conn.tls
      ? tlsConnect({
          host: conn.host,
          port: conn.port,
          // SNI takes names only; an IP address is still checked against the certificate's IP SANs.
          ...(isIP(conn.host) ? {} : { servername: conn.host }),
          ...(conn.tls.ca !== undefined ? { ca: conn.tls.ca } : {}),
          rejectUnauthorized: !conn.tls.insecure,
        })
      : netConnect({ host: conn.host, port: conn.port, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new CapsuleError(ErrorCode.DatabaseError, `${describeConnection(conn)}: cannot connect (timed out)`),
      );
    }, CONNECT_TIMEOUT_MS);
    socket.once(conn.tls ? "secureConnect" : "connect", () => {
      clearTimeout(timer);
      socket.setNoDelay(true);
      socket.removeAllListeners("error");
      socket.setKeepAlive(true, 30_000);
      resolve(socket);
    });
    socket.once("error", (error) => {
      clearTimeout(timer);
      reject(translateRedisError(error, conn));
    });
  });
}

/** An error reply as one line naming the server; authentication failures never echo what was sent. */
export function replyError(reply: RespError, command: string, conn: RedisConnection): CapsuleError {
  const where = describeConnection(conn);
  const user = conn.user ?? "default";
  if (command === "AUTH" && /WRONGPASS|invalid password|invalid username-password/i.test(reply.message)) {
    return new CapsuleError(ErrorCode.DatabaseError, `${where}: authentication failed for user "${user}"`);
  }
  if (command === "AUTH" && /without any password configured|no password is set/i.test(reply.message)) {
    return new CapsuleError(
      ErrorCode.DatabaseError,
      `${where}: a password was given but the server has none configured for user "${user}"`,
    );
  }
  if (reply.code === "NOAUTH") {
    return new CapsuleError(
      ErrorCode.DatabaseError,
      `${where}: the server requires a password (set REDISCLI_AUTH or --password-env)`,
    );
  }
  if (reply.code === "NOPERM") {
    return new CapsuleError(
      ErrorCode.DatabaseError,
      redact(`${where}: user "${user}" may not run ${command}: ${reply.message}`),
    );
  }
  return new CapsuleError(ErrorCode.DatabaseError, redact(`${where}: ${command}: ${reply.message}`));
}

export function translateRedisError(error: unknown, conn: RedisConnection): Error {
  if (error instanceof CapsuleError) return error;
  const e = error as { code?: string; message?: string };
  const where = describeConnection(conn);
  const failure = socketFailure(error);
  if (failure?.kind === "unreachable" || failure?.kind === "reset")
    return new CapsuleError(ErrorCode.DatabaseError, `${where}: ${failure.phrase}`);
  if (conn.tls && failure?.kind === "untrusted-certificate") {
    return new CapsuleError(
      ErrorCode.DatabaseError,
      `${where}: ${failure.phrase}: pass --ca-cert with the CA that signed it`,
    );
  }
  return new CapsuleError(ErrorCode.DatabaseError, redact(`${where}: ${e.message ?? String(error)}`));
}
