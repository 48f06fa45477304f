/**
 * The S3 adapter: the only file that imports `@aws-sdk/*`. Speaks to AWS S3 and to S3-compatible servers (MinIO,
 * Ceph radosgw) with the settings that matter for them: endpoint, path-style addressing, region, checksum mode, TLS
 * verification, and riding out an outage: every request is retried with backoff for a bounded window, a stalled one
 * is aborted by a timeout and retried, and a download cut off mid-stream resumes where it stopped (docs/adr/0013).
 */
import { Agent as HttpsAgent } from "node:https";
import { Agent as HttpAgent } from "node:http";
import { Readable } from "node:stream";
import type { CompletedPart, PutObjectCommandInput, S3Client } from "@aws-sdk/client-s3";
import { CapsuleError, messageOf } from "../domain/errors.js";
import { loadOnUse } from "../util/load-on-use.js";
import { lostConnection } from "../util/socket-error.js";
import {
  objectInfo,
  unlessMissing,
  type ObjectInfo,
  type ObjectStore,
  type PutOptions,
  type PutResult,
} from "./object-store.js";
import { DEFAULT_UPLOAD_CONCURRENCY, MAX_PARTS, choosePartSize } from "./part-size.js";
import { ResumingReadable } from "./resuming-readable.js";
import { S3PlainGet, type RetryErrorInfo, type RetryStrategyV2, type RetryToken } from "./s3-plain-get.js";
import {
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_RETRY_WINDOW_MS,
  backoffMs,
  retryTimeLeft,
} from "./retry-window.js";
import { bucketMustExist, changedWhileRead, storeError, type StoreFailure } from "./store-failure.js";
import { sendInParts } from "./stream-parts.js";

// The SDK is loaded with the first S3 store, not with capsule (util/load-on-use.ts).
const s3 = loadOnUse<typeof import("@aws-sdk/client-s3")>("@aws-sdk/client-s3");
const httpHandler = loadOnUse<typeof import("@smithy/node-http-handler")>("@smithy/node-http-handler");

export interface S3Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

export interface S3StoreConfig {
  readonly bucket: string;
  /** Custom endpoint (MinIO, radosgw…). Unset means AWS S3 for `region`. */
  readonly endpoint?: string;
  /** @default "us-east-1" */
  readonly region?: string;
  /** @default true when `endpoint` is set (most S3-compatible servers need it), else false */
  readonly forcePathStyle?: boolean;
  /** Static credentials; unset means the standard AWS chain (env, profile, IRSA, instance role). */
  readonly credentials?: S3Credentials;
  /**
   * When the SDK computes request checksums. `when_required` avoids the streaming-trailer uploads that some
   * S3-compatible servers reject (radosgw answers 411).
   * @default "when_required" with a custom endpoint, "when_supported" on AWS
   */
  readonly checksumMode?: "when_required" | "when_supported";
  /** @default false; when true TLS certificates are not verified (the caller warns). */
  readonly insecureSkipTlsVerify?: boolean;
  /**
   * How long a request that keeps failing with a transient error (connection refused or reset, timeout, 5xx,
   * throttling) is retried, with backoff, counted from its first failure: a store away for less than this does
   * not fail a run. Until the store has answered once, at most 10 s. @default 60 000 ms (`CAPSULE_S3_RETRY_WINDOW_MS`)
   */
  readonly retryWindowMs?: number;
  /** At most this many attempts per request, however much of the window is left. @default unlimited */
  readonly maxAttempts?: number;
  /**
   * A request whose connection carries no bytes either way for this long is aborted and retried: a hung
   * endpoint, or a download whose server went silent. @default 30 000 ms (`CAPSULE_S3_IDLE_TIMEOUT_MS`)
   */
  readonly idleTimeoutMs?: number;
  /**
   * A request not answered within this long (its body sent and the response headers back) is aborted and
   * retried, even if bytes trickle. Generous, as it includes sending a whole part. @default 120 000 ms
   * (`CAPSULE_S3_REQUEST_TIMEOUT_MS`)
   */
  readonly requestTimeoutMs?: number;
  readonly serverSideEncryption?: { readonly algorithm: "AES256" | "aws:kms"; readonly kmsKeyId?: string };
  /** Parallel part uploads per artifact. @default 3 */
  readonly uploadConcurrency?: number;
}

const CONNECT_TIMEOUT_MS = 5_000;

/**
 * The SDK logs through `console` when it has no logger (a request timeout that only warns, a socket pool at capacity,
 * a streaming request it cannot retry): that would break capsule's one-line stderr contract. Errors reach capsule
 * as rejections instead, and capsule decides what to log.
 */
const SILENT = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

export class S3ObjectStore implements ObjectStore {
  readonly description: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  /**
   * How this server wants the ETag in `If-Match`. HTTP says quoted, and AWS accepts that; Ceph radosgw 16 only
   * matches the bare hex. Learned on the first conditional write that a quoted tag fails and a bare one passes.
   */
  private etagStyle: "quoted" | "bare" | undefined;
  private readonly plainGet: S3PlainGet;
  private readonly checksum: "WHEN_REQUIRED" | "WHEN_SUPPORTED";

  constructor(private readonly config: S3StoreConfig) {
    this.bucket = config.bucket;
    this.description = `s3://${config.bucket}${config.endpoint ? ` at ${config.endpoint}` : ""}`;
    const custom = config.endpoint !== undefined;
    this.checksum = (config.checksumMode ?? (custom ? "when_required" : "when_supported")).toUpperCase() as
      "WHEN_REQUIRED" | "WHEN_SUPPORTED";
    const agentOptions = { keepAlive: true, maxSockets: 64 };
    const retryStrategy = new RetryWindowStrategy(
      config.retryWindowMs ?? DEFAULT_RETRY_WINDOW_MS,
      config.maxAttempts ?? Number.POSITIVE_INFINITY,
    );
    this.client = new (s3().S3Client)({
      region: config.region ?? "us-east-1",
      ...(config.endpoint ? { endpoint: config.endpoint } : {}),
      forcePathStyle: config.forcePathStyle ?? custom,
      ...(config.credentials ? { credentials: config.credentials } : {}),
      requestChecksumCalculation: this.checksum,
      responseChecksumValidation: this.checksum,
      retryStrategy,
      logger: SILENT,
      // Resolve each command's middleware stack once per client, not on every request: a listing that reads
      // thousands of statefiles spent about a third of its CPU rebuilding it. capsule never edits a stack.
      cacheMiddleware: true,
      requestHandler: new (httpHandler().NodeHttpHandler)({
        connectionTimeout: CONNECT_TIMEOUT_MS,
        // Without throwOnRequestTimeout the handler only warns on stderr and the request hangs on.
        requestTimeout: config.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
        throwOnRequestTimeout: true,
        socketTimeout: config.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
        logger: SILENT,
        httpAgent: new HttpAgent(agentOptions),
        httpsAgent: new HttpsAgent({ ...agentOptions, rejectUnauthorized: !config.insecureSkipTlsVerify }),
      }),
    });
    this.plainGet = new S3PlainGet(this.client, this.bucket, s3().GetObjectCommand, retryStrategy);
  }

  put(key: string, body: Readable | Uint8Array | string, options: PutOptions = {}): Promise<PutResult> {
    return this.request(`put ${key}`, () =>
      body instanceof Readable
        ? this.putStream(key, body, options)
        : this.putBytes(key, typeof body === "string" ? Buffer.from(body) : body, options),
    );
  }

  /** One PutObject, conditional when `options` asks. */
  private async putBytes(key: string, bytes: Uint8Array, options: PutOptions): Promise<PutResult> {
    const sse = this.sseParams();
    const send = (ifMatch: string | undefined) =>
      this.client.send(
        new (s3().PutObjectCommand)({
          Bucket: this.bucket,
          Key: key,
          Body: bytes,
          ContentLength: bytes.byteLength,
          ContentType: options.contentType,
          ...(ifMatch ? { IfMatch: ifMatch } : {}),
          ...(options.ifNoneMatch ? { IfNoneMatch: options.ifNoneMatch } : {}),
          ...sse,
        }),
      );
    const out = options.ifMatch ? await this.putIfMatch(options.ifMatch, send) : await send(undefined);
    return out.ETag ? { etag: out.ETag } : {};
  }

  /**
   * Streams of unknown length go through a multipart upload (S3 and radosgw reject a length-less PutObject), cut by
   * stream-parts.ts into a fixed pool of part buffers: the retry strategy resends a failed part from its buffer, and
   * while every part in flight waits out an outage nothing reads the stream, so the producer blocks. A stream that
   * fits in one part is one PutObject. A failure aborts the multipart upload, so no parts are left behind.
   */
  private async putStream(key: string, body: Readable, options: PutOptions): Promise<PutResult> {
    const sse = this.sseParams();
    const partSize = choosePartSize(options.sizeHint);
    let upload: Promise<string> | undefined;
    const begin = () =>
      (upload ??= this.client
        .send(
          new (s3().CreateMultipartUploadCommand)({
            Bucket: this.bucket,
            Key: key,
            ContentType: options.contentType,
            // With checksums on, each part carries a CRC32 and the completion must list them (as lib-storage does).
            ...(this.checksum === "WHEN_SUPPORTED" ? { ChecksumAlgorithm: "CRC32" as const } : {}),
            ...sse,
          }),
        )
        .then((out) => {
          if (!out.UploadId) throw new Error("the store started a multipart upload without an UploadId");
          return out.UploadId;
        }));
    const parts: CompletedPart[] = [];
    let single: PutResult | undefined;
    try {
      await sendInParts(body, {
        partSize,
        concurrency: this.config.uploadConcurrency ?? DEFAULT_UPLOAD_CONCURRENCY,
        maxParts: MAX_PARTS,
        what: `${this.description}: put ${key}`,
        send: async ({ bytes, index, last }) => {
          if (index === 0 && last) {
            single = await this.putBytes(key, bytes, options);
            return;
          }
          const uploadId = await begin();
          const out = await this.client.send(
            new (s3().UploadPartCommand)({
              Bucket: this.bucket,
              Key: key,
              UploadId: uploadId,
              PartNumber: index + 1,
              Body: bytes,
              ContentLength: bytes.byteLength,
            }),
          );
          if (!out.ETag) throw new Error(`the store answered part ${index + 1} without an ETag`);
          parts[index] = {
            PartNumber: index + 1,
            ETag: out.ETag,
            ...(out.ChecksumCRC32 ? { ChecksumCRC32: out.ChecksumCRC32 } : {}),
            ...(out.ChecksumCRC32C ? { ChecksumCRC32C: out.ChecksumCRC32C } : {}),
            ...(out.ChecksumCRC64NVME ? { ChecksumCRC64NVME: out.ChecksumCRC64NVME } : {}),
            ...(out.ChecksumSHA1 ? { ChecksumSHA1: out.ChecksumSHA1 } : {}),
            ...(out.ChecksumSHA256 ? { ChecksumSHA256: out.ChecksumSHA256 } : {}),
          };
        },
      });
      if (single) return single;
      const out = await this.client.send(
        new (s3().CompleteMultipartUploadCommand)({
          Bucket: this.bucket,
          Key: key,
          UploadId: await begin(),
          MultipartUpload: { Parts: parts },
        }),
      );
      return out.ETag ? { etag: out.ETag } : {};
    } catch (error) {
      const started = upload;
      if (started) {
        await started
          .then((uploadId) =>
            this.client.send(
              new (s3().AbortMultipartUploadCommand)({ Bucket: this.bucket, Key: key, UploadId: uploadId }),
            ),
          )
          .catch(() => undefined);
      }
      throw error;
    }
  }

  /**
   * A conditional put in the ETag style the server understands. A bare retry after a quoted 412 cannot turn a
   * real conflict into a success: a changed object fails both forms.
   */
  private async putIfMatch<T>(etag: string, send: (ifMatch: string) => Promise<T>): Promise<T> {
    const bare = etag.replace(/^"|"$/g, "");
    if (this.etagStyle === "bare") return send(bare);
    try {
      const out = await send(`"${bare}"`);
      this.etagStyle = "quoted";
      return out;
    } catch (error) {
      if (this.etagStyle === "quoted" || classify(error).kind !== "precondition") throw error;
      const out = await send(bare);
      this.etagStyle = "bare";
      return out;
    }
  }

  /**
   * The object's bytes as a stream that survives a cut connection: the SDK cannot retry a response body, so when
   * one fails mid-stream the rest is asked for again with a Range from the byte it stopped at (each request again
   * retried over the window), and refused if the object changed meanwhile (another ETag).
   */
  async get(key: string): Promise<Readable> {
    const open = (offset: number) =>
      this.request(`get ${key}`, async () => {
        const out = await this.client.send(
          new (s3().GetObjectCommand)({
            Bucket: this.bucket,
            Key: key,
            ...(offset > 0 ? { Range: `bytes=${offset}-` } : {}),
          }),
        );
        if (!(out.Body instanceof Readable)) throw new Error(`get ${key}: the S3 client returned no stream`);
        return { body: out.Body, etag: out.ETag };
      });
    const first = await open(0);
    return new ResumingReadable(
      first.body,
      async (offset) => {
        const next = await open(offset);
        if (next.etag !== first.etag) {
          next.body.destroy();
          throw changedWhileRead(`${this.description}: get ${key}`);
        }
        return next.body;
      },
      (error) => this.translate(error, `get ${key}`),
    );
  }

  /** Small whole objects (statefiles, catalogs), read by the thousand: without the SDK's middleware. */
  getWithEtag(key: string): Promise<{ bytes: Buffer; etag?: string }> {
    return this.request(`get ${key}`, () => this.plainGet.get(key));
  }

  head(key: string): Promise<ObjectInfo | undefined> {
    return unlessMissing(
      this.request(`head ${key}`, async () => {
        const out = await this.client.send(new (s3().HeadObjectCommand)({ Bucket: this.bucket, Key: key }));
        return objectInfo(key, out.ContentLength, out.ETag, out.LastModified);
      }),
    );
  }

  async *list(prefix: string, options: { pageSize?: number } = {}): AsyncIterable<ObjectInfo> {
    for await (const page of this.pages(prefix, options.pageSize ?? 1000))
      for (const item of page.Contents ?? [])
        if (item.Key) yield objectInfo(item.Key, item.Size, item.ETag, item.LastModified);
  }

  async *listFolders(prefix: string): AsyncIterable<string> {
    for await (const page of this.pages(prefix, 1000, "/"))
      for (const common of page.CommonPrefixes ?? []) {
        const name = common.Prefix?.slice(prefix.length, -1);
        if (name) yield name;
      }
  }

  private async *pages(prefix: string, pageSize: number, delimiter?: string) {
    try {
      yield* s3().paginateListObjectsV2(
        { client: this.client, pageSize },
        { Bucket: this.bucket, Prefix: prefix, ...(delimiter ? { Delimiter: delimiter } : {}) },
      );
    } catch (error) {
      throw this.translate(error, `list ${prefix}`);
    }
  }

  async delete(key: string): Promise<void> {
    await unlessMissing(
      this.request(`delete ${key}`, () =>
        this.client.send(new (s3().DeleteObjectCommand)({ Bucket: this.bucket, Key: key })),
      ),
    );
  }

  async check(): Promise<void> {
    await bucketMustExist(
      this.request("check bucket", () =>
        this.client.send(new (s3().HeadBucketCommand)({ Bucket: this.bucket })),
      ),
      this.description,
      "bucket",
    );
  }

  /** Multipart uploads begun under `prefix` and never completed or aborted (a killed process leaves them). */
  listIncompleteUploads(prefix: string): Promise<Array<{ key: string; uploadId: string; initiated?: Date }>> {
    return this.request(`list uploads ${prefix}`, async () => {
      const out = await this.client.send(
        new (s3().ListMultipartUploadsCommand)({ Bucket: this.bucket, Prefix: prefix }),
      );
      return (out.Uploads ?? []).flatMap((u) =>
        u.Key && u.UploadId
          ? [{ key: u.Key, uploadId: u.UploadId, ...(u.Initiated ? { initiated: u.Initiated } : {}) }]
          : [],
      );
    });
  }

  async incompleteUploadKeys(prefix: string): Promise<string[]> {
    return (await this.listIncompleteUploads(prefix)).map((u) => u.key);
  }

  async abortIncompleteUploads(prefix: string): Promise<number> {
    const uploads = await this.listIncompleteUploads(prefix);
    for (const { key, uploadId } of uploads) {
      await unlessMissing(
        this.request(`abort upload ${key}`, () =>
          this.client.send(
            new (s3().AbortMultipartUploadCommand)({ Bucket: this.bucket, Key: key, UploadId: uploadId }),
          ),
        ),
      );
    }
    return uploads.length;
  }

  destroy(): void {
    this.client.destroy();
  }

  private sseParams(): Pick<PutObjectCommandInput, "ServerSideEncryption" | "SSEKMSKeyId"> {
    const sse = this.config.serverSideEncryption;
    if (!sse) return {};
    return {
      ServerSideEncryption: sse.algorithm,
      ...(sse.kmsKeyId ? { SSEKMSKeyId: sse.kmsKeyId } : {}),
    };
  }

  /** One SDK call, its failure turned into one clear line that names the store and the operation. */
  private async request<T>(operation: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw this.translate(error, operation);
    }
  }

  private translate(error: unknown, operation: string): Error {
    if (error instanceof CapsuleError) return error;
    return storeError(`${this.description}: ${operation}`, classify(error), error, retriesOf(error));
  }
}

/** What an SDK or network error means. */
function classify(error: unknown): StoreFailure {
  const e = error as {
    name?: string;
    code?: string;
    Code?: string;
    $metadata?: { httpStatusCode?: number };
    cause?: { code?: string };
  };
  const name = e.name ?? e.Code ?? "";
  const status = e.$metadata?.httpStatusCode;
  if (name === "NoSuchKey" || name === "NotFound" || (status === 404 && name !== "NoSuchBucket")) {
    return { kind: "missing" };
  }
  if (name === "NoSuchBucket") return { kind: "no-bucket", noun: "bucket" };
  if (name === "PreconditionFailed" || status === 412) return { kind: "precondition" };
  if (
    ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "Forbidden", "ExpiredToken"].includes(
      name,
    ) ||
    status === 403
  ) {
    return { kind: "denied", reason: name || status, check: "the access key, secret key and bucket policy" };
  }
  if (name === "CredentialsProviderError") {
    return {
      kind: "no-credentials",
      detail: "no S3 credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, or a role)",
    };
  }
  if (lostConnection(error) || name === "TimeoutError") {
    // The handler's timeouts say which one fired ("the request socket timed out after 30000 ms of inactivity").
    const why =
      name === "TimeoutError"
        ? messageOf(error).replace(/^@smithy\/node-http-handler - (\[ERROR\] )?/, "")
        : "";
    const netCode = e.code ?? e.cause?.code ?? "";
    return { kind: "unreachable", detail: `${netCode || name}${why ? `: ${why.split(" (")[0]}` : ""}` };
  }
  return { kind: "error", detail: `${name || "error"}: ${messageOf(error)}` };
}

/** ", after N attempts over S s" when the SDK retried, so a failure says it was not for lack of trying. */
function retriesOf(error: unknown): string {
  const meta = (error as { $metadata?: { attempts?: number; totalRetryDelay?: number } }).$metadata;
  if (!meta?.attempts || meta.attempts < 2) return "";
  return `, after ${meta.attempts} attempts over ${Math.round((meta.totalRetryDelay ?? 0) / 1000)} s of waiting`;
}

class WindowToken implements RetryToken {
  constructor(
    /** When the request first failed; undefined until it has. */
    readonly firstFailureAt: number | undefined,
    readonly retries: number,
    readonly delayMs: number,
  ) {}
  getRetryCount(): number {
    return this.retries;
  }
  getRetryDelay(): number {
    return this.delayMs;
  }
}

/**
 * Retries a request that failed with what the SDK classifies as transient or throttling, with capped exponential
 * backoff, until `windowMs` has passed since its first failure. The SDK's standard strategy counts attempts
 * (4 attempts spend under 2 s) and draws every retry from one budget shared by all requests (500 tokens, 14 a
 * retry: about 35 retries until a success refills it), which parts and heartbeats retrying through a minute-long
 * outage use up: neither can say "ride out a minute". The SDK's retry middleware still runs the loop; this only
 * decides whether and when (docs/adr/0013).
 */
class RetryWindowStrategy implements RetryStrategyV2 {
  /** Whether any request of this client has succeeded: only a store that was there can be "away". */
  private reached = false;

  constructor(
    private readonly windowMs: number,
    private readonly maxAttempts: number,
  ) {}

  acquireInitialRetryToken(): Promise<RetryToken> {
    return Promise.resolve(new WindowToken(undefined, 0, 0));
  }

  refreshRetryTokenForRetry(token: RetryToken, info: RetryErrorInfo): Promise<RetryToken> {
    const previous = token as WindowToken;
    const now = performance.now();
    const firstFailureAt = previous.firstFailureAt ?? now;
    const left = retryTimeLeft(firstFailureAt, this.windowMs, this.reached, now);
    const retryable = info.errorType === "TRANSIENT" || info.errorType === "THROTTLING";
    // The middleware reports the request's own error when this rejects.
    if (!retryable || left <= 0 || previous.retries + 2 > this.maxAttempts) {
      return Promise.reject(new Error("no retry"));
    }
    // A Retry-After is a date on the wall clock; the window is on the monotonic one.
    const hinted = info.retryAfterHint ? info.retryAfterHint.getTime() - Date.now() : 0;
    const delay = Math.round(Math.min(left, Math.max(backoffMs(previous.retries), hinted)));
    return Promise.resolve(new WindowToken(firstFailureAt, previous.retries + 1, delay));
  }

  recordSuccess(): void {
    this.reached = true;
  }
}
