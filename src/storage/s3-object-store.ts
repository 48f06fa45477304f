/**
 * The S3 adapter: the only file that imports `@aws-sdk/*`. Speaks to AWS S3 and to S3-compatible servers (MinIO,
 * Ceph radosgw) with the settings that matter for them: endpoint, path-style addressing, region, checksum mode, TLS
 * verification, bounded retries.
 */
import { Agent as HttpsAgent } from "node:https";
import { Agent as HttpAgent } from "node:http";
import { Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  S3Client,
  paginateListObjectsV2,
  type PutObjectCommandInput,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { CapsuleError, ErrorCode, NotFoundError, PreconditionFailedError, messageOf } from "../errors.js";
import type { ObjectInfo, ObjectStore, PutOptions, PutResult } from "./object-store.js";
import { DEFAULT_UPLOAD_CONCURRENCY, choosePartSize } from "./part-size.js";

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
  /** Total attempts per request, with exponential backoff between them. @default 4 */
  readonly maxAttempts?: number;
  readonly serverSideEncryption?: { readonly algorithm: "AES256" | "aws:kms"; readonly kmsKeyId?: string };
  /** Parallel part uploads per artifact. @default 3 */
  readonly uploadConcurrency?: number;
}

// The SDK warns on every process under Node < 22 through process.emitWarning, which would break capsule's
// one-line error contract on stderr. The runtime is pinned to Node 20 by the Kubernetes client (DESIGN §13).
process.env["AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"] ??= "true";

const CONNECT_TIMEOUT_MS = 5_000;
/** Socket idle time after which a request is abandoned (and retried). */
const IDLE_TIMEOUT_MS = 60_000;

export class S3ObjectStore implements ObjectStore {
  readonly description: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  /**
   * How this server wants the ETag in `If-Match`. HTTP says quoted, and AWS accepts that; Ceph radosgw 16 only
   * matches the bare hex. Learned on the first conditional write that a quoted tag fails and a bare one passes.
   */
  private etagStyle: "quoted" | "bare" | undefined;

  constructor(private readonly config: S3StoreConfig) {
    this.bucket = config.bucket;
    this.description = `s3://${config.bucket}${config.endpoint ? ` at ${config.endpoint}` : ""}`;
    const custom = config.endpoint !== undefined;
    const checksum = (config.checksumMode ?? (custom ? "when_required" : "when_supported")).toUpperCase() as
      "WHEN_REQUIRED" | "WHEN_SUPPORTED";
    const agentOptions = { keepAlive: true, maxSockets: 64 };
    this.client = new S3Client({
      region: config.region ?? "us-east-1",
      ...(config.endpoint ? { endpoint: config.endpoint } : {}),
      forcePathStyle: config.forcePathStyle ?? custom,
      ...(config.credentials ? { credentials: config.credentials } : {}),
      requestChecksumCalculation: checksum,
      responseChecksumValidation: checksum,
      maxAttempts: config.maxAttempts ?? 4,
      requestHandler: new NodeHttpHandler({
        connectionTimeout: CONNECT_TIMEOUT_MS,
        requestTimeout: IDLE_TIMEOUT_MS,
        httpAgent: new HttpAgent(agentOptions),
        httpsAgent: new HttpsAgent({ ...agentOptions, rejectUnauthorized: !config.insecureSkipTlsVerify }),
      }),
    });
  }

  async put(key: string, body: Readable | Uint8Array | string, options: PutOptions = {}): Promise<PutResult> {
    const sse = this.sseParams();
    try {
      if (body instanceof Readable) {
        // Streams of unknown length go through multipart: S3 and radosgw reject a length-less PutObject.
        const upload = new Upload({
          client: this.client,
          params: { Bucket: this.bucket, Key: key, Body: body, ContentType: options.contentType, ...sse },
          partSize: choosePartSize(options.sizeHint),
          queueSize: this.config.uploadConcurrency ?? DEFAULT_UPLOAD_CONCURRENCY,
          leavePartsOnError: false,
        });
        const out = await upload.done();
        return out.ETag ? { etag: out.ETag } : {};
      }
      const bytes = typeof body === "string" ? Buffer.from(body) : body;
      const send = (ifMatch: string | undefined) =>
        this.client.send(
          new PutObjectCommand({
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
    } catch (error) {
      throw this.translate(error, `put ${key}`);
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
      if (this.etagStyle === "quoted" || !isPreconditionFailed(error)) throw error;
      const out = await send(bare);
      this.etagStyle = "bare";
      return out;
    }
  }

  async get(key: string): Promise<Readable> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      if (!(out.Body instanceof Readable)) throw new Error(`get ${key}: the S3 client returned no stream`);
      return out.Body;
    } catch (error) {
      throw this.translate(error, `get ${key}`);
    }
  }

  async getWithEtag(key: string): Promise<{ bytes: Buffer; etag?: string }> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      if (!out.Body) throw new Error(`get ${key}: the S3 client returned no body`);
      const bytes = Buffer.from(await out.Body.transformToByteArray());
      return out.ETag ? { bytes, etag: out.ETag } : { bytes };
    } catch (error) {
      throw this.translate(error, `get ${key}`);
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return {
        key,
        size: out.ContentLength ?? 0,
        ...(out.ETag ? { etag: out.ETag } : {}),
        ...(out.LastModified ? { lastModified: out.LastModified } : {}),
      };
    } catch (error) {
      const translated = this.translate(error, `head ${key}`);
      if (translated instanceof NotFoundError) return undefined;
      throw translated;
    }
  }

  async *list(prefix: string, options: { pageSize?: number } = {}): AsyncIterable<ObjectInfo> {
    const pages = paginateListObjectsV2(
      { client: this.client, pageSize: options.pageSize ?? 1000 },
      { Bucket: this.bucket, Prefix: prefix },
    );
    try {
      for await (const page of pages) {
        for (const item of page.Contents ?? []) {
          if (!item.Key) continue;
          yield {
            key: item.Key,
            size: item.Size ?? 0,
            ...(item.ETag ? { etag: item.ETag } : {}),
            ...(item.LastModified ? { lastModified: item.LastModified } : {}),
          };
        }
      }
    } catch (error) {
      throw this.translate(error, `list ${prefix}`);
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (error) {
      const translated = this.translate(error, `delete ${key}`);
      if (!(translated instanceof NotFoundError)) throw translated;
    }
  }

  async check(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (error) {
      const translated = this.translate(error, "check bucket");
      if (translated instanceof NotFoundError) {
        throw new CapsuleError(ErrorCode.StoreNoSuchBucket, `${this.description}: bucket does not exist`);
      }
      throw translated;
    }
  }

  /** Multipart uploads begun under `prefix` and never completed or aborted (a killed process leaves them). */
  async listIncompleteUploads(
    prefix: string,
  ): Promise<Array<{ key: string; uploadId: string; initiated?: Date }>> {
    try {
      const out = await this.client.send(
        new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: prefix }),
      );
      return (out.Uploads ?? []).flatMap((u) =>
        u.Key && u.UploadId
          ? [{ key: u.Key, uploadId: u.UploadId, ...(u.Initiated ? { initiated: u.Initiated } : {}) }]
          : [],
      );
    } catch (error) {
      throw this.translate(error, `list uploads ${prefix}`);
    }
  }

  async abortIncompleteUploads(prefix: string): Promise<number> {
    const uploads = await this.listIncompleteUploads(prefix);
    for (const { key, uploadId } of uploads) {
      try {
        await this.client.send(
          new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }),
        );
      } catch (error) {
        const translated = this.translate(error, `abort upload ${key}`);
        if (!(translated instanceof NotFoundError)) throw translated;
      }
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

  /** Turns an SDK or network error into one clear line that names the store and the operation. */
  private translate(error: unknown, operation: string): Error {
    if (error instanceof CapsuleError) return error;
    const e = error as {
      name?: string;
      code?: string;
      Code?: string;
      $metadata?: { httpStatusCode?: number };
      cause?: { code?: string };
    };
    const name = e.name ?? e.Code ?? "";
    const status = e.$metadata?.httpStatusCode;
    const netCode = e.code ?? e.cause?.code ?? "";
    const where = `${this.description}: ${operation}`;
    if (name === "NoSuchKey" || name === "NotFound" || (status === 404 && name !== "NoSuchBucket")) {
      return new NotFoundError(`${where}: not found`);
    }
    if (name === "NoSuchBucket") {
      return new CapsuleError(ErrorCode.StoreNoSuchBucket, `${where}: bucket does not exist`);
    }
    if (name === "PreconditionFailed" || status === 412) {
      return new PreconditionFailedError(`${where}: the object changed since it was read`);
    }
    if (
      ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "Forbidden", "ExpiredToken"].includes(
        name,
      ) ||
      status === 403
    ) {
      return new CapsuleError(
        ErrorCode.StoreAccessDenied,
        `${where}: access denied (${name || status}); check the access key, secret key and bucket policy`,
      );
    }
    if (name === "CredentialsProviderError") {
      return new CapsuleError(
        ErrorCode.StoreAccessDenied,
        `${where}: no S3 credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, or a role)`,
      );
    }
    if (
      [
        "ECONNREFUSED",
        "ENOTFOUND",
        "EAI_AGAIN",
        "ETIMEDOUT",
        "ECONNRESET",
        "EHOSTUNREACH",
        "ENETUNREACH",
      ].includes(netCode) ||
      name === "TimeoutError"
    ) {
      return new CapsuleError(
        ErrorCode.StoreUnreachable,
        `${where}: endpoint unreachable (${netCode || name})`,
        { cause: error },
      );
    }
    return new CapsuleError(ErrorCode.StoreError, `${where}: ${name || "error"}: ${messageOf(error)}`, {
      cause: error,
    });
  }
}

function isPreconditionFailed(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === "PreconditionFailed" || e.$metadata?.httpStatusCode === 412;
}
