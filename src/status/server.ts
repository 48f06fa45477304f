/**
 * The status HTTP API (docs/design.md §10), on node:http:
 *
 *   GET  /  and /ui/…                               the status page (public shell; its script calls the API)
 *   GET  /healthz                                   the process is alive, with its version and build
 *   GET  /readyz                                    200 once ready (see `Readiness`), else 503
 *   GET  /metrics                                   Prometheus text
 *   GET  /api/v1/clusters                           clusters with anything in the bucket
 *   GET  /api/v1/clusters/{cluster}/backups         ?engine= &status= &target= &limit= &cursor= (see listBackups)
 *   GET  /api/v1/clusters/{cluster}/backups/{id}    one backup with its statefile
 *   POST /api/v1/clusters/{cluster}/backups         {"target": …, "requestedBy"?: …} files a request for the watcher
 *   GET  /api/v1/clusters/{cluster}/wal             WAL lag of each target that streams WAL (pitr), with its engine
 *   GET  /api/v1/clusters/{cluster}/wal/{target}    one target's WAL lag; 404 when it streams none
 *
 * WAL lag comes from the target's `head.json` (status/wal-lag.ts): `lagBytes` = serverLsn − archivedLsn (WAL the
 * server had written that the bucket does not hold yet), `lagSeconds` = now − coveredUntil (how far behind the present
 * the newest restorable point is: what a restore to "latest" would lose now), `headAgeSeconds` = now − updatedAt
 * (a live streamer rewrites its head every few seconds), plus archivedLsn, serverLsn, timeline and coveredUntil.
 *
 * JSON only; errors are `{"error": {"code", "message"}}` with a 4xx for the caller's mistakes and a 5xx for ours or
 * the bucket's; a 503 always says when to retry (`Retry-After`). With a token configured, /metrics and /api/ need `Authorization: Bearer <token>` (compared in
 * constant time); the probes never do. Bodies, headers and the time a request may take are bounded.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { CapsuleError, ErrorCode, NotFoundError, messageOf } from "../domain/errors.js";
import type { Logger } from "../log.js";
import { redact, registerSecret } from "../redact.js";
import { newRequestId, type BackupRequest } from "../requests/request.js";
import { type BackupEntry, newestFirst, type BackupStore } from "../storage/backup-store.js";
import { BucketSet } from "../storage/bucket-set.js";
import { ENGINES, type EngineName, backupIdTime, isEngine, isSafeSegment } from "../domain/backup.js";
import type { BackupState } from "../domain/statefile.js";
import { buildInfo } from "../version.js";
import type { DaemonMetrics } from "./metrics.js";
import { PAGE_SECURITY_HEADERS, pageAsset } from "./page.js";
import { BACKUP_STATES, backupDetail, backupSummary } from "./views.js";
import { readWalLags, type WalLagResult } from "./wal-lag.js";
import { walStreamingEngines } from "../engines/registry.js";

export interface Readiness {
  readonly ready: boolean;
  /** Each check's state, shown by /readyz. */
  readonly checks: Readonly<Record<string, string>>;
}

export interface StatusServerOptions {
  /** The one bucket the API reads (`capsule serve`); or `buckets`. Without either the API answers 503. */
  readonly store?: BackupStore;
  /** The daemon's buckets: a default one and each CnvrgApp's own. */
  readonly buckets?: BucketSet;
  readonly metrics: DaemonMetrics;
  readonly readiness: () => Readiness;
  readonly log: Logger;
  /** Bearer token for /metrics and /api/; unset: no authentication. */
  readonly token?: string;
  /** Allow POST …/backups (filing requests). Only with a token. @default false */
  readonly allowRequests?: boolean;
  /** Which targets a cluster has, to refuse a request for an unknown one at once; unset: any target accepted. */
  readonly hasTarget?: (cluster: string, target: string) => boolean;
  /** @default 16384 */
  readonly maxBodyBytes?: number;
  /** A handler that takes longer answers 503. @default 20000 */
  readonly handlerTimeoutMs?: number;
  /**
   * How long a backup list waits for the bucket before it answers with the last list it read instead (marked with
   * its age); without one, it waits up to the handler timeout. @default 2000
   */
  readonly staleAfterMs?: number;
  readonly now?: () => Date;
}

/** A backup list as last read from the bucket, and when. */
interface Listed {
  readonly at: Date;
  readonly entries: readonly BackupEntry[];
}

const MAX_LIMIT = 10_000;
/** Seconds a client is told to wait before retrying a 503. */
const RETRY_AFTER_SECONDS = 5;
/** Backup lists remembered for answering while the bucket is slow: one per cluster and filter, the oldest dropped. */
const REMEMBERED_LISTS = 64;
const JSON_TYPE = "application/json; charset=utf-8";

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "HttpError";
  }
}

const badRequest = (message: string) => new HttpError(400, "bad_request", message);
const notFound = (message: string) => new HttpError(404, "not_found", message);

export class StatusServer {
  private readonly server: Server;
  private readonly tokenDigest: Buffer | undefined;
  private readonly buckets: BucketSet | undefined;
  /** The last list read for each cluster and filter, answered while a newer one is still being read. */
  private readonly lastLists = new Map<string, Listed>();
  /** Lists being read: concurrent requests for the same one share it (a dashboard's refreshes at start-up). */
  private readonly listing = new Map<string, Promise<Listed>>();

  constructor(private readonly options: StatusServerOptions) {
    this.tokenDigest = options.token ? digest(options.token) : undefined;
    // Whoever built the options, the token is never echoed back (a mistyped query may carry it).
    registerSecret(options.token);
    this.buckets = options.buckets ?? (options.store && BucketSet.of(options.store));
    this.server = createServer({ maxHeaderSize: 16 * 1024 }, (req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        options.log.error("status request failed", { error: messageOf(error) });
        if (!res.headersSent) this.send(res, 500, { error: { code: "internal", message: "internal error" } });
        else res.destroy();
      });
    });
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
    this.server.keepAliveTimeout = 5_000;
  }

  async listen(port: number, host = "0.0.0.0"): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    return this.server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "http://status");
    } catch {
      return this.fail(res, badRequest("malformed request URL"));
    }
    const asset = pageAsset(url.pathname, this.tokenDigest !== undefined);
    if (asset) return this.servePage(req, res, asset.contentType, asset.body);
    try {
      const body = await this.withTimeout(this.route(req, url));
      if (typeof body === "string") {
        res.writeHead(200, {
          "content-type": "text/plain; version=0.0.4; charset=utf-8",
          "cache-control": "no-store",
        });
        res.end(body);
      } else this.send(res, body.status ?? 200, body.json, body.headers);
    } catch (error) {
      this.fail(res, error);
    }
  }

  private servePage(req: IncomingMessage, res: ServerResponse, contentType: string, body: Buffer): void {
    const method = req.method ?? "GET";
    if (method !== "GET" && method !== "HEAD") return this.fail(res, notAllowed(method, ["GET", "HEAD"]));
    res.writeHead(200, {
      "content-type": contentType,
      "content-length": body.length,
      "cache-control": "no-cache",
      ...PAGE_SECURITY_HEADERS,
    });
    res.end(method === "HEAD" ? undefined : body);
  }

  private async route(
    req: IncomingMessage,
    url: URL,
  ): Promise<string | { status?: number; json: unknown; headers?: Record<string, string> }> {
    const path = url.pathname;
    const method = req.method ?? "GET";
    if (path === "/healthz") {
      allow(method, ["GET"]);
      // Which build answers: the same fields as `capsule version` and capsule_build_info.
      return { json: { status: "ok", ...buildInfo } };
    }
    if (path === "/readyz") {
      allow(method, ["GET"]);
      const readiness = this.options.readiness();
      return { status: readiness.ready ? 200 : 503, json: readiness };
    }
    if (path === "/metrics") {
      allow(method, ["GET"]);
      this.authenticate(req);
      return this.options.metrics.registry.metrics();
    }
    if (path !== "/api/v1" && !path.startsWith("/api/v1/")) throw notFound(`no such path ${path}`);
    this.authenticate(req);
    const segments = path.split("/").slice(3).map(decode);
    if (segments[0] !== "clusters") throw notFound(`no such path ${path}`);
    if (segments.length === 1) {
      allow(method, ["GET"]);
      noQuery(url, []);
      const buckets = this.bucketSet();
      const listed = await Promise.all(buckets.stores().map((store) => store.listClusters()));
      const clusters = [...new Set([...buckets.clusters(), ...listed.flat()])].sort();
      return { json: { items: clusters.map((cluster) => ({ cluster })) } };
    }
    const cluster = segments[1] ?? "";
    if (!isSafeSegment(cluster)) throw badRequest(`invalid cluster ${JSON.stringify(cluster)}`);
    if (segments[2] === "wal" && segments.length <= 4) {
      allow(method, ["GET"]);
      noQuery(url, []);
      return { json: await this.walLag(cluster, segments[3]) };
    }
    if (segments[2] !== "backups" || segments.length > 4) throw notFound(`no such path ${path}`);
    if (segments.length === 3) {
      allow(method, ["GET", "POST"]);
      return method === "POST" ? this.fileRequest(req, url, cluster) : this.listBackups(url, cluster);
    }
    allow(method, ["GET"]);
    noQuery(url, []);
    return { json: await this.getBackup(cluster, segments[3] ?? "") };
  }

  private async listBackups(
    url: URL,
    cluster: string,
  ): Promise<{ json: unknown; headers: Record<string, string> }> {
    noQuery(url, ["engine", "status", "target", "limit", "cursor"]);
    const engine = url.searchParams.get("engine");
    const status = url.searchParams.get("status");
    const target = url.searchParams.get("target");
    const limitParam = url.searchParams.get("limit");
    if (engine !== null && !isEngine(engine))
      throw badRequest(`engine must be one of ${ENGINES.join(", ")} (got ${JSON.stringify(engine)})`);
    if (status !== null && !BACKUP_STATES.includes(status as BackupState))
      throw badRequest(`status must be one of ${BACKUP_STATES.join(", ")} (got ${JSON.stringify(status)})`);
    if (target !== null && !isSafeSegment(target))
      throw badRequest(`invalid target ${JSON.stringify(target)}`);
    let limit = MAX_LIMIT;
    if (limitParam !== null) {
      limit = Number(limitParam);
      if (!/^\d+$/.test(limitParam) || limit < 1 || limit > MAX_LIMIT)
        throw badRequest(
          `limit must be an integer from 1 to ${MAX_LIMIT} (got ${JSON.stringify(limitParam)})`,
        );
    }
    const cursorParam = url.searchParams.get("cursor");
    const after = cursorParam === null ? undefined : parseCursor(cursorParam);
    const filter = {
      cluster,
      ...(engine !== null && isEngine(engine) && { engine }),
      ...(target !== null && { target }),
    };
    const { at, entries, stale } = await this.listed(filter);
    const matching = entries.filter((e) => status === null || e.state === status);
    const start = after ? matching.findIndex((e) => newestFirst(e, after) > 0) : 0;
    const page = start < 0 ? [] : matching.slice(start, start + limit);
    const last = page.at(-1);
    const more = last !== undefined && start + page.length < matching.length;
    const ageSeconds = Math.max(
      0,
      Math.round(((this.options.now?.() ?? new Date()).getTime() - at.getTime()) / 1000),
    );
    return {
      headers: { "x-capsule-data-age": String(ageSeconds) },
      json: {
        cluster,
        total: matching.length,
        items: page.map((e) => backupSummary(e, redact)),
        ...(more && { nextCursor: cursorOf(last) }),
        // When the bucket was read for this answer; `stale` when it is slower than staleAfterMs and the last list
        // read is answered meanwhile.
        asOf: at.toISOString(),
        ...(stale && { stale: true }),
      },
    };
  }

  /**
   * The cluster's backups: read now, or — when that takes longer than staleAfterMs and an earlier list is known —
   * the earlier list, marked stale, while the read goes on and refreshes it. With nothing known yet the caller waits
   * (and gets a 503 with Retry-After if even the handler timeout passes).
   */
  private async listed(filter: {
    cluster: string;
    engine?: EngineName;
    target?: string;
  }): Promise<Listed & { stale: boolean }> {
    const id = JSON.stringify([filter.cluster, filter.engine ?? "", filter.target ?? ""]);
    let reading = this.listing.get(id);
    if (!reading) {
      const stores = this.storesOf(filter.cluster);
      reading = (async () => {
        const at = this.options.now?.() ?? new Date();
        const lists = await Promise.all(stores.map((store) => store.list(filter)));
        const entries = lists.length === 1 ? lists[0]! : lists.flat().sort(newestFirst);
        const listed = { at, entries };
        this.lastLists.delete(id);
        this.lastLists.set(id, listed);
        if (this.lastLists.size > REMEMBERED_LISTS)
          this.lastLists.delete(this.lastLists.keys().next().value!);
        return listed;
      })().finally(() => this.listing.delete(id));
      reading.catch(() => undefined);
      this.listing.set(id, reading);
    }
    const known = this.lastLists.get(id);
    if (!known) return { ...(await reading), stale: false };
    let timer: NodeJS.Timeout | undefined;
    const patience = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), this.options.staleAfterMs ?? 2_000);
    });
    try {
      const fresh = await Promise.race([reading, patience]);
      return fresh ? { ...fresh, stale: false } : { ...known, stale: true };
    } finally {
      clearTimeout(timer);
    }
  }

  private async getBackup(cluster: string, backupId: string): Promise<unknown> {
    const engine = backupId.split("-", 1)[0] ?? "";
    if (!isSafeSegment(backupId) || !isEngine(engine))
      throw badRequest(`invalid backup id ${JSON.stringify(backupId)}`);
    const ref = { cluster, engine, backupId };
    let missing: unknown;
    for (const store of this.storesOf(cluster)) {
      try {
        return backupDetail(await store.get(ref), redact);
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error;
        missing = error;
      }
    }
    throw missing;
  }

  /** Files a backup request for the watcher: `<prefix>/<cluster>/requests/<id>.json`. */
  private async fileRequest(
    req: IncomingMessage,
    url: URL,
    cluster: string,
  ): Promise<{ status: number; json: unknown }> {
    noQuery(url, []);
    if (!this.options.allowRequests || !this.tokenDigest) {
      throw new HttpError(
        403,
        "forbidden",
        "filing requests is disabled (start the daemon with --allow-requests and a token)",
      );
    }
    const type = req.headers["content-type"] ?? "";
    if (!/^application\/json(\s*;|$)/i.test(type))
      throw new HttpError(415, "unsupported_media_type", "send the request as application/json");
    const raw = await readBody(req, this.options.maxBodyBytes ?? 16 * 1024);
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      throw badRequest("the body is not valid JSON");
    }
    if (body === null || typeof body !== "object" || Array.isArray(body))
      throw badRequest("the body must be a JSON object");
    const { target, requestedBy, ...rest } = body as Record<string, unknown>;
    const unknown = Object.keys(rest);
    if (unknown.length > 0) throw badRequest(`unknown field ${unknown[0]}`);
    if (typeof target !== "string" || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(target) || target.length > 63)
      throw badRequest(`target must be a target name (got ${JSON.stringify(target) ?? "nothing"})`);
    if (
      requestedBy !== undefined &&
      (typeof requestedBy !== "string" || requestedBy.length < 1 || requestedBy.length > 256)
    )
      throw badRequest("requestedBy must be a string of 1 to 256 characters");
    if (this.options.hasTarget && !this.options.hasTarget(cluster, target))
      throw notFound(`cluster ${cluster} has no target ${target}`);
    const store = this.bucketSet().storeFor(cluster, target);
    if (!store) throw notFound(`no bucket is known for cluster ${cluster}`);
    const now = this.options.now?.() ?? new Date();
    const requestId = newRequestId(now, randomBytes(4).toString("hex"));
    const request: BackupRequest = {
      action: "backup",
      target,
      requestedBy: typeof requestedBy === "string" ? requestedBy : "status-api",
      requestedAt: now.toISOString(),
    };
    const { key, outcomeKey } = await store.fileRequest(
      cluster,
      requestId,
      `${JSON.stringify(request, null, 2)}\n`,
    );
    this.options.log.info("request filed", { cluster, requestId, target });
    return {
      status: 202,
      json: {
        requestId,
        cluster,
        key,
        outcomeKey,
        request,
      },
    };
  }

  private bucketSet(): BucketSet {
    if (!this.buckets || this.buckets.isEmpty)
      throw new HttpError(
        503,
        "no_bucket",
        "no bucket is configured (--bucket) or resolved from a CnvrgApp yet",
      );
    return this.buckets;
  }

  /**
   * The WAL lag of the cluster's targets that have a head, each with its engine (the targets come from the backups of
   * the WAL-streaming engines: a pitr target's base backups are its engine's), or of one named target. The first
   * bucket with a head wins.
   */
  private async walLag(cluster: string, target: string | undefined): Promise<unknown> {
    if (target !== undefined && !isSafeSegment(target))
      throw badRequest(`invalid target ${JSON.stringify(target)}`);
    const stores = this.storesOf(cluster);
    const now = () => this.options.now?.() ?? new Date();
    // A WAL archive is kept per target, not per engine: its engine is the one whose backups name the target.
    const engineOf = new Map<string, EngineName>();
    if (target === undefined) {
      for (const engine of walStreamingEngines()) {
        const { entries } = await this.listed({ cluster, engine });
        for (const e of entries) if (e.statefile) engineOf.set(e.statefile.target, engine);
      }
    }
    const targets = target === undefined ? [...engineOf.keys()] : [target];
    const found = new Map<string, WalLagResult>();
    for (const store of stores) {
      const missing = targets.filter((t) => !found.has(t));
      for (const lag of await readWalLags(store, cluster, missing, now)) found.set(lag.target, lag);
    }
    const items = [...found.values()]
      .sort((a, b) => (a.target < b.target ? -1 : 1))
      .map((lag) => ({
        ...("error" in lag ? { ...lag, error: redact(lag.error) } : lag),
        engine: engineOf.get(lag.target),
      }));
    if (target === undefined) return { cluster, items };
    const one = items[0];
    if (!one) throw notFound(`target ${target} of cluster ${cluster} streams no WAL`);
    return one;
  }

  private storesOf(cluster: string): BackupStore[] {
    const stores = this.bucketSet().storesOf(cluster);
    if (stores.length === 0) throw notFound(`no bucket is known for cluster ${cluster}`);
    return stores;
  }

  private authenticate(req: IncomingMessage): void {
    if (!this.tokenDigest) return;
    const header = req.headers.authorization ?? "";
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    // Digests have equal length whatever was sent, so the comparison time says nothing about the token.
    if (!match?.[1] || !timingSafeEqual(digest(match[1]), this.tokenDigest)) {
      throw new HttpError(401, "unauthorized", "a valid bearer token is required", {
        "www-authenticate": 'Bearer realm="capsule"',
      });
    }
  }

  private async withTimeout<T>(work: Promise<T>): Promise<T> {
    const ms = this.options.handlerTimeoutMs ?? 20_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new HttpError(503, "timeout", `the request took longer than ${ms} ms`)),
        ms,
      );
    });
    work.catch(() => undefined); // still running after a timeout: its failure is no longer anyone's business
    try {
      return await Promise.race([work, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private fail(res: ServerResponse, error: unknown): void {
    const http = toHttpError(error);
    if (http.status >= 500) {
      this.options.log.warn("status request failed", {
        status: http.status,
        error: redact(messageOf(error)),
      });
    }
    this.send(res, http.status, { error: { code: http.code, message: redact(http.message) } }, http.headers);
  }

  private send(
    res: ServerResponse,
    status: number,
    json: unknown,
    headers: Record<string, string> = {},
  ): void {
    const body = `${JSON.stringify(json)}\n`;
    res.writeHead(status, {
      "content-type": JSON_TYPE,
      "content-length": Buffer.byteLength(body),
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
      // Never a bare 503: the bucket warming up, a slow handler or no bucket yet all pass.
      ...(status === 503 && { "retry-after": String(RETRY_AFTER_SECONDS) }),
      ...headers,
    });
    res.end(body);
  }
}

function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  if (error instanceof NotFoundError) return notFound(error.message);
  if (error instanceof CapsuleError) {
    switch (error.code) {
      case ErrorCode.StoreUnreachable:
      case ErrorCode.StoreAccessDenied:
      case ErrorCode.StoreNoSuchBucket:
      case ErrorCode.StoreError:
        return new HttpError(502, "bucket_error", error.message);
      case ErrorCode.PreconditionFailed:
        return new HttpError(409, "conflict", error.message);
      default:
        return new HttpError(500, "internal", error.message);
    }
  }
  return new HttpError(500, "internal", "internal error");
}

/**
 * A page's cursor: where its last backup sorts (start time and id), so the next page starts after it even if that
 * backup was deleted meanwhile. Opaque to clients.
 */
function cursorOf(entry: BackupEntry): string {
  const at = entry.statefile?.startedAt ?? backupIdTime(entry.ref.backupId);
  return Buffer.from(JSON.stringify([at, entry.ref.cluster, entry.ref.engine, entry.ref.backupId])).toString(
    "base64url",
  );
}

/** The position a cursor stands for, as an entry `newestFirst` can compare with. */
function parseCursor(cursor: string): BackupEntry {
  const bad = () =>
    badRequest(`cursor is not one this API returned (got ${JSON.stringify(cursor.slice(0, 80))})`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw bad();
  }
  if (!Array.isArray(parsed) || parsed.length !== 4 || !parsed.every((p) => typeof p === "string"))
    throw bad();
  const [startedAt, cluster, engine, backupId] = parsed as [string, string, string, string];
  if (!isEngine(engine)) throw bad();
  return {
    ref: { cluster, engine, backupId },
    key: "",
    state: "succeeded",
    statefile: { startedAt } as BackupEntry["statefile"],
  };
}

function allow(method: string, methods: readonly string[]): void {
  if (!methods.includes(method)) throw notAllowed(method, methods);
}

function notAllowed(method: string, methods: readonly string[]): HttpError {
  return new HttpError(405, "method_not_allowed", `${method} is not allowed here`, {
    allow: methods.join(", "),
  });
}

function noQuery(url: URL, allowed: readonly string[]): void {
  for (const name of url.searchParams.keys()) {
    if (!allowed.includes(name)) throw badRequest(`unknown query parameter ${JSON.stringify(name)}`);
  }
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw badRequest("malformed path");
  }
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

async function readBody(req: IncomingMessage, max: number): Promise<string> {
  const declared = Number(req.headers["content-length"] ?? "0");
  const tooLarge = () =>
    new HttpError(413, "too_large", `the body may hold at most ${max} bytes`, { connection: "close" });
  if (declared > max) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > max) throw tooLarge();
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}
