/**
 * The Elasticsearch adapter: JSON and NDJSON over node:http/https (the only file in capsule that opens connections
 * to Elasticsearch or OpenSearch). No client package: the official one is bound to a server major version and
 * capsule needs a dozen endpoints that have been stable since 7.x. Keep-alive connections, TLS verified by default,
 * bounded waits, and errors as one line that names the cluster, the request and the server's `type: reason` —
 * never a credential.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { CapsuleError, ErrorCode } from "../../domain/errors.js";
import { redact } from "../../redact.js";
import { socketFailure } from "../../util/socket-error.js";
import { describeConnection, type EsConnection } from "./connection.js";
import type { ClusterIdentity } from "./format.js";

/** How long a request may wait for the server to say anything. */
const DEFAULT_TIMEOUT_MS = 120_000;
/** Refuse larger responses: a string must stay well below V8's limit. Search pages are sized far below this. */
const MAX_RESPONSE_BYTES = 256 * 1024 * 1024;

export type Method = "GET" | "HEAD" | "PUT" | "POST" | "DELETE";

export interface RequestOptions {
  readonly query?: Record<string, string | number | boolean | undefined>;
  /** An object is sent as JSON; a string as given (with `ndjson`, as application/x-ndjson). */
  readonly body?: unknown;
  readonly ndjson?: boolean;
  /** Statuses returned instead of thrown (e.g. 404 for HEAD). */
  readonly allow?: readonly number[];
}

export interface EsResponse {
  readonly status: number;
  readonly text: string;
  readonly headers: IncomingMessage["headers"];
}

/** An error answer from the server: its status and the `type`/`reason` of its error body. */
export class EsHttpError extends CapsuleError {
  constructor(
    message: string,
    readonly status: number,
    readonly type: string,
    readonly reason: string,
  ) {
    super(ErrorCode.DatabaseError, message);
    this.name = "EsHttpError";
  }
}

export interface ServerInfo extends ClusterIdentity {
  readonly nodeName: string;
}

export class EsClient {
  private readonly agent: HttpAgent;
  private readonly where: string;

  constructor(
    readonly conn: EsConnection,
    private readonly options: { signal?: AbortSignal } = {},
  ) {
    this.where = describeConnection(conn);
    const common = { keepAlive: true, maxSockets: 4 };
    this.agent =
      conn.url.protocol === "https:"
        ? new HttpsAgent({
            ...common,
            rejectUnauthorized: !conn.tls.insecure,
            ...(conn.tls.ca ? { ca: conn.tls.ca } : {}),
          })
        : new HttpAgent(common);
  }

  /** `GET /`: which server this is. */
  async info(): Promise<ServerInfo> {
    const body = await this.json<{
      name?: string;
      cluster_name?: string;
      cluster_uuid?: string;
      version?: { number?: string; distribution?: string };
    }>("GET", "");
    const version = body.version?.number;
    if (!version) {
      throw new CapsuleError(
        ErrorCode.DatabaseError,
        `${this.where}: does not look like Elasticsearch or OpenSearch (GET / has no version.number)`,
      );
    }
    return {
      distribution: body.version?.distribution === "opensearch" ? "opensearch" : "elasticsearch",
      version,
      clusterName: body.cluster_name ?? "",
      clusterUuid: body.cluster_uuid ?? "",
      nodeName: body.name ?? "",
    };
  }

  /** A request whose answer is JSON, parsed. */
  async json<T>(method: Method, path: string, options: RequestOptions = {}): Promise<T> {
    const response = await this.request(method, path, options);
    try {
      return JSON.parse(response.text) as T;
    } catch {
      throw new CapsuleError(
        ErrorCode.DatabaseError,
        `${this.where}: ${method} /${path}: the answer is not JSON (${response.status}, ${response.text.length} bytes)`,
      );
    }
  }

  /** One request; a status ≥ 400 not in `allow` is thrown as an `EsHttpError`. */
  async request(method: Method, path: string, options: RequestOptions = {}): Promise<EsResponse> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.once(method, path, options);
      } catch (error) {
        // A keep-alive connection the server closed while idle fails on reuse: that is not the server's answer.
        if ((error as { reusedSocket?: boolean }).reusedSocket && attempt === 1) continue;
        throw error;
      }
    }
  }

  close(): void {
    this.agent.destroy();
  }

  private once(method: Method, path: string, options: RequestOptions): Promise<EsResponse> {
    const url = new URL(path, this.conn.url);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const body =
      options.body === undefined
        ? undefined
        : typeof options.body === "string"
          ? options.body
          : JSON.stringify(options.body);
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined) {
      headers["content-type"] = options.ndjson ? "application/x-ndjson" : "application/json";
      headers["content-length"] = String(Buffer.byteLength(body));
    }
    const auth = this.conn.auth;
    if (auth?.kind === "basic") {
      headers["authorization"] = `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString("base64")}`;
    } else if (auth?.kind === "apiKey") headers["authorization"] = `ApiKey ${auth.key}`;
    const what = `${method} ${url.pathname}`;
    const send = url.protocol === "https:" ? httpsRequest : httpRequest;

    return new Promise<EsResponse>((resolve, reject) => {
      const req = send(url, {
        method,
        headers,
        agent: this.agent,
        timeout: DEFAULT_TIMEOUT_MS,
        ...(this.options.signal ? { signal: this.options.signal } : {}),
      });
      req.on("timeout", () =>
        req.destroy(
          new CapsuleError(
            ErrorCode.DatabaseError,
            `${this.where}: ${what}: no answer within ${Math.round(DEFAULT_TIMEOUT_MS / 1000)} s`,
          ),
        ),
      );
      req.on("error", (error) => {
        const translated = this.translate(error, what);
        if (req.reusedSocket && (error as NodeJS.ErrnoException).code === "ECONNRESET") {
          Object.assign(translated, { reusedSocket: true });
        }
        reject(translated);
      });
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on("data", (chunk: Buffer) => {
          bytes += chunk.length;
          if (bytes > MAX_RESPONSE_BYTES) {
            res.destroy();
            req.destroy(
              new CapsuleError(
                ErrorCode.DatabaseError,
                `${this.where}: ${what}: answer larger than ${MAX_RESPONSE_BYTES >> 20} MiB`,
              ),
            );
            return;
          }
          chunks.push(chunk);
        });
        res.on("error", (error) => reject(this.translate(error, what)));
        res.on("end", () => {
          const status = res.statusCode ?? 0;
          const text = Buffer.concat(chunks).toString("utf8");
          if (status >= 400 && !(options.allow ?? []).includes(status)) {
            reject(this.httpError(status, text, what));
            return;
          }
          resolve({ status, text, headers: res.headers });
        });
      });
      req.end(body);
    });
  }

  private httpError(status: number, text: string, what: string): EsHttpError {
    const { type, reason } = errorOf(text);
    const auth = this.conn.auth;
    const who = auth?.kind === "basic" ? `user "${auth.user}"` : auth?.kind === "apiKey" ? "the API key" : "";
    let message: string;
    if (status === 401) {
      message = auth
        ? `${this.where}: authentication failed for ${who} (401 ${type}: ${reason})`
        : `${this.where}: the cluster requires authentication: set ES_USER and ES_PASSWORD, or ES_API_KEY (401 ${type}: ${reason})`;
    } else if (status === 403) {
      message = `${this.where}: ${who || "anonymous access"} may not ${what} (403 ${type}: ${reason})`;
    } else message = `${this.where}: ${what}: ${status} ${type}: ${reason}`;
    return new EsHttpError(redact(message), status, type, reason);
  }

  private translate(error: unknown, what: string): Error {
    if (error instanceof CapsuleError) return error;
    const e = error as NodeJS.ErrnoException;
    if (e.name === "AbortError" && this.options.signal?.aborted) {
      const reason: unknown = this.options.signal.reason;
      return reason instanceof Error ? reason : new CapsuleError(ErrorCode.Refused, "interrupted");
    }
    const failure = socketFailure(e);
    switch (failure?.kind) {
      case "untrusted-certificate":
        return new CapsuleError(
          ErrorCode.DatabaseError,
          `${this.where}: TLS verification failed (${failure.code}): pass --ca-cert FILE with the cluster's CA, ` +
            `or --insecure-skip-tls-verify`,
        );
      case "unreachable":
        return new CapsuleError(ErrorCode.DatabaseError, `${this.where}: ${failure.phrase}`);
      case "reset":
        return new CapsuleError(ErrorCode.DatabaseError, `${this.where}: ${what}: ${failure.phrase}`);
    }
    if (e.code === "EPROTO") {
      return new CapsuleError(
        ErrorCode.DatabaseError,
        `${this.where}: TLS handshake failed (is the URL's scheme right? ${e.message})`,
      );
    }
    return new CapsuleError(ErrorCode.DatabaseError, redact(`${this.where}: ${what}: ${e.message}`));
  }
}

/**
 * The `type` and `reason` of an error body: `{"error":{"type","reason","root_cause":[…]},"status"}` from
 * Elasticsearch and OpenSearch, `{"error":"…"}` from old or plugin handlers, plain text from a proxy or
 * OpenSearch's security plugin ("Unauthorized").
 */
export function errorOf(text: string): { type: string; reason: string } {
  try {
    const body = JSON.parse(text) as { error?: unknown; message?: unknown };
    const error = body.error;
    if (error && typeof error === "object") {
      const e = error as {
        type?: string;
        reason?: string;
        root_cause?: Array<{ type?: string; reason?: string }>;
        caused_by?: { type?: string; reason?: string };
      };
      const root = e.root_cause?.[0];
      // A search_phase_execution_exception says little; its root cause says what happened.
      const specific = e.type === "search_phase_execution_exception" && root?.type ? root : e;
      const reason = specific.reason ?? e.caused_by?.reason ?? "";
      return { type: specific.type ?? "error", reason };
    }
    if (typeof error === "string") return { type: "error", reason: error };
    if (typeof body.message === "string") return { type: "error", reason: body.message };
  } catch {
    // not JSON: fall through
  }
  const line = text.trim().split("\n", 1)[0] ?? "";
  return { type: "error", reason: line.length > 200 ? `${line.slice(0, 200)}…` : line || "(empty answer)" };
}
