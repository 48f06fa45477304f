/**
 * The Azure Blob Storage adapter: the only file that imports `@azure/storage-blob` and `@azure/identity`, both on
 * first use, so a run against another store does not load them (they add about half a second to every start).
 * `azure://CONTAINER/PREFIX`; block blobs. Same guarantees as the S3 adapter (docs/adr/0013): artifacts are cut into
 * blocks staged from the stream with bounded concurrency (constant memory), each block carries its MD5 so the
 * service refuses a corrupted one, and the block list is committed last; conditional writes on ETags; every
 * request retried with backoff over a window from its first failure, and aborted when unanswered too long.
 */
import { createHash, randomBytes } from "node:crypto";
import { PassThrough, Readable } from "node:stream";
import type {
  BlobServiceClient,
  BlockBlobClient,
  ContainerClient,
  ContainerListBlobFlatSegmentResponse,
  StoragePipelineOptions,
} from "@azure/storage-blob";
import { CapsuleError, NotFoundError, PreconditionFailedError, messageOf } from "../domain/errors.js";
import { redact } from "../redact.js";
import { lostConnection } from "../util/socket-error.js";
import {
  objectInfo,
  readAll,
  unlessMissing,
  type ObjectInfo,
  type ObjectStore,
  type PutOptions,
  type PutResult,
} from "./object-store.js";
import { DEFAULT_UPLOAD_CONCURRENCY, choosePartSize } from "./part-size.js";
import {
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_RETRY_WINDOW_MS,
  backoffMs,
  retryTimeLeft,
} from "./retry-window.js";
import { bucketMustExist, storeError, type StoreFailure } from "./store-failure.js";
import { sendInParts } from "./stream-parts.js";

/** A block blob holds at most 50,000 committed blocks. */
export const MAX_BLOCKS = 50_000;

/** How capsule signs in to the storage account, in the order the standard variables are tried. */
export type AzureCredentials =
  | { readonly kind: "connection-string"; readonly connectionString: string }
  | { readonly kind: "shared-key"; readonly account: string; readonly key: string }
  | { readonly kind: "sas"; readonly account: string; readonly sasToken: string }
  /** `DefaultAzureCredential`: workload identity, managed identity, the Azure CLI's login. */
  | { readonly kind: "identity"; readonly account: string };

export interface AzureStoreConfig {
  readonly container: string;
  readonly credentials: AzureCredentials;
  /**
   * The blob service endpoint (`https://ACCOUNT.blob.core.windows.net` unless given). A connection string brings
   * its own (its BlobEndpoint): how Azurite and Azure Stack are reached.
   */
  readonly endpoint?: string;
  /**
   * How long a request that keeps failing with a transient error (connection refused or reset, timeout, 408, 429,
   * 5xx) is retried, with backoff, counted from its first failure. Until the store has answered once, at most 10 s.
   * @default 60 000 ms (`CAPSULE_AZURE_RETRY_WINDOW_MS`)
   */
  readonly retryWindowMs?: number;
  /**
   * A request not answered within this long (its body sent and the response headers back) is aborted and retried.
   * Generous, as it includes sending a whole block. @default 120 000 ms (`CAPSULE_AZURE_REQUEST_TIMEOUT_MS`)
   */
  readonly requestTimeoutMs?: number;
  /** Blocks staged in parallel per artifact. @default 3 */
  readonly uploadConcurrency?: number;
}

/** A download cut off mid-body is resumed from its offset (same ETag) this many times by the SDK. */
const DOWNLOAD_RESUMES = 5;
const LIST_PAGE_SIZE = 1000;

/** Statuses worth another try: the service or something in front of it is busy or briefly away. */
const TRANSIENT_STATUS = new Set([408, 429, 500, 502, 503, 504]);

export class AzureObjectStore implements ObjectStore {
  readonly description: string;
  private client: Promise<ContainerClient> | undefined;
  /** Whether any request has been answered: only a store that was there can be "away" for the whole window. */
  private reached = false;

  constructor(private readonly config: AzureStoreConfig) {
    this.description = `azure://${config.container} at ${endpointOf(config)}`;
  }

  /** How this store signs in (which of the standard variables it took), for messages and tests; no secret. */
  get signIn(): AzureCredentials["kind"] {
    return this.config.credentials.kind;
  }

  private container(): Promise<ContainerClient> {
    this.client ??= serviceClient(this.config).then((service) =>
      service.getContainerClient(this.config.container),
    );
    return this.client;
  }

  put(key: string, body: Readable | Uint8Array | string, options: PutOptions = {}): Promise<PutResult> {
    return this.request(`put ${key}`, async (container) => {
      const blob = container.getBlockBlobClient(key);
      if (body instanceof Readable) return this.putStream(blob, key, body, options);
      const bytes = typeof body === "string" ? Buffer.from(body) : Buffer.from(body);
      const out = await this.retry((abortSignal) =>
        blob.upload(bytes, bytes.byteLength, {
          abortSignal,
          transactionalContentMD5: md5(bytes),
          blobHTTPHeaders: { blobContentMD5: md5(bytes), ...contentType(options) },
          conditions: conditionsOf(options),
        }),
      );
      return out.etag ? { etag: out.etag } : {};
    });
  }

  /**
   * Stages the stream as blocks of a size chosen from the size hint (so 50,000 blocks are never exceeded), at most
   * `uploadConcurrency` at once from a fixed pool of buffers (stream-parts.ts), and commits the block list last:
   * until then no reader sees the blob. A failure leaves no uncommitted blocks behind.
   */
  private async putStream(
    blob: BlockBlobClient,
    key: string,
    body: Readable,
    options: PutOptions,
  ): Promise<PutResult> {
    const blockSize = choosePartSize(options.sizeHint, MAX_BLOCKS);
    // Block ids are unique to this upload (and all of one length, as Azure requires).
    const nonce = randomBytes(8).toString("hex");
    const ids: string[] = [];
    const whole = createHash("md5");
    try {
      await sendInParts(body, {
        partSize: blockSize,
        concurrency: this.config.uploadConcurrency ?? DEFAULT_UPLOAD_CONCURRENCY,
        maxParts: MAX_BLOCKS,
        what: `${this.description}: put ${key}`,
        send: async ({ bytes }) => {
          // An empty stream commits an empty block list: an empty blob.
          if (bytes.byteLength === 0) return;
          const id = Buffer.from(`${nonce}-${String(ids.length).padStart(6, "0")}`).toString("base64");
          ids.push(id);
          whole.update(bytes);
          await this.retry((abortSignal) =>
            blob.stageBlock(id, bytes, bytes.byteLength, {
              abortSignal,
              transactionalContentMD5: md5(bytes),
            }),
          );
        },
      });
      const out = await this.retry((abortSignal) =>
        blob.commitBlockList(ids, {
          abortSignal,
          blobHTTPHeaders: { blobContentMD5: whole.digest(), ...contentType(options) },
          conditions: conditionsOf(options),
        }),
      );
      return out.etag ? { etag: out.etag } : {};
    } catch (error) {
      await this.discardUncommitted(blob).catch(() => undefined);
      throw error;
    }
  }

  /**
   * Drops the uncommitted blocks of a blob that has no committed version — Azure's "abort a multipart upload".
   * Committing an empty block list discards every uncommitted block; the empty blob it leaves is then deleted,
   * both conditional, so a blob someone committed meanwhile is never touched. Resolves to whether it dropped any.
   */
  private async discardUncommitted(blob: BlockBlobClient): Promise<boolean> {
    try {
      const empty = await this.retry((abortSignal) =>
        blob.commitBlockList([], { abortSignal, conditions: { ifNoneMatch: "*" } }),
      );
      await this.retry((abortSignal) =>
        blob.delete({ abortSignal, conditions: empty.etag ? { ifMatch: empty.etag } : {} }),
      );
      return true;
    } catch (error) {
      const translated = this.translate(error, `discard uncommitted blocks of ${blob.name}`);
      if (translated instanceof PreconditionFailedError || translated instanceof NotFoundError) return false;
      throw translated;
    }
  }

  /** The blob's bytes; a connection cut mid-body is resumed from its offset while the ETag stays the same. */
  get(key: string): Promise<Readable> {
    return this.request(`get ${key}`, async (container) => {
      const blob = container.getBlobClient(key);
      const out = await this.retry((abortSignal) =>
        blob.download(0, undefined, { abortSignal, maxRetryRequests: DOWNLOAD_RESUMES }),
      );
      const body = out.readableStreamBody;
      if (!body) throw new Error("the Azure client returned no stream");
      const stream = body instanceof Readable ? body : Readable.from(body);
      // The SDK's errors on the body (after its resumes ran out) become capsule's one line too.
      const translated = new PassThrough();
      stream.on("error", (error) => translated.destroy(this.translate(error, `get ${key}`)));
      translated.on("close", () => stream.destroy());
      return stream.pipe(translated);
    });
  }

  getWithEtag(key: string): Promise<{ bytes: Buffer; etag?: string }> {
    // One GET: the bytes and the ETag of exactly those bytes.
    return this.request(`get ${key}`, (container) =>
      this.retry(async (abortSignal) => {
        const out = await container.getBlobClient(key).download(0, undefined, { abortSignal });
        const bytes = out.readableStreamBody ? await readAll(out.readableStreamBody) : Buffer.alloc(0);
        return out.etag ? { bytes, etag: out.etag } : { bytes };
      }),
    );
  }

  head(key: string): Promise<ObjectInfo | undefined> {
    return unlessMissing(
      this.request(`head ${key}`, async (container) => {
        const blob = container.getBlobClient(key);
        const out = await this.retry((abortSignal) => blob.getProperties({ abortSignal }));
        return objectInfo(key, out.contentLength, out.etag, out.lastModified);
      }),
    );
  }

  /** Committed blobs under `prefix` in key order (Azure lists blobs sorted), one page of `pageSize` at a time. */
  async *list(prefix: string, options: { pageSize?: number } = {}): AsyncIterable<ObjectInfo> {
    yield* this.listBlobs(prefix, options.pageSize ?? LIST_PAGE_SIZE, false);
  }

  private async *listBlobs(
    prefix: string,
    pageSize: number,
    includeUncommitted: boolean,
  ): AsyncIterable<ObjectInfo> {
    let continuationToken: string | undefined;
    do {
      const token = continuationToken;
      const page = await this.request(`list ${prefix}`, (container) =>
        this.retry(async (abortSignal) => {
          const pages = container
            .listBlobsFlat({ prefix, abortSignal, includeUncommitedBlobs: includeUncommitted })
            .byPage({ maxPageSize: pageSize, ...(token ? { continuationToken: token } : {}) });
          // An AsyncIterableIterator's `next()` has `any` for its done value, which would make the page `any`.
          const next = (await pages.next()) as IteratorResult<ContainerListBlobFlatSegmentResponse, unknown>;
          return next.done ? undefined : next.value;
        }),
      );
      if (!page) return;
      for (const { name, properties: p } of page.segment.blobItems)
        yield objectInfo(name, p.contentLength, p.etag, p.lastModified);
      continuationToken = page.continuationToken || undefined;
    } while (continuationToken);
  }

  async delete(key: string): Promise<void> {
    await unlessMissing(
      this.request(`delete ${key}`, (container) =>
        this.retry((abortSignal) =>
          container.getBlobClient(key).deleteIfExists({ abortSignal, deleteSnapshots: "include" }),
        ),
      ),
    );
  }

  async check(): Promise<void> {
    await bucketMustExist(
      this.request("check container", (container) =>
        this.retry((abortSignal) => container.getProperties({ abortSignal })),
      ),
      this.description,
      "container",
    );
  }

  /**
   * Blobs under `prefix` that have uncommitted blocks and no committed version: what a killed upload leaves
   * (Azure drops them after a week; until then they are billed and no listing shows them).
   */
  async listIncompleteUploads(prefix: string): Promise<string[]> {
    const committed = new Set<string>();
    for await (const o of this.listBlobs(prefix, LIST_PAGE_SIZE, false)) committed.add(o.key);
    const incomplete: string[] = [];
    for await (const o of this.listBlobs(prefix, LIST_PAGE_SIZE, true))
      if (!committed.has(o.key)) incomplete.push(o.key);
    return incomplete;
  }

  incompleteUploadKeys(prefix: string): Promise<string[]> {
    return this.listIncompleteUploads(prefix);
  }

  async abortIncompleteUploads(prefix: string): Promise<number> {
    let dropped = 0;
    const container = await this.container();
    for (const key of await this.listIncompleteUploads(prefix)) {
      if (await this.discardUncommitted(container.getBlockBlobClient(key))) dropped++;
    }
    return dropped;
  }

  /**
   * Runs one request, retrying it over the window on transient failures with capped, jittered exponential
   * backoff. Each attempt is aborted if its response headers are not back within the request timeout.
   */
  private async retry<T>(attempt: (abortSignal: AbortSignal) => Promise<T>): Promise<T> {
    const timeoutMs = this.config.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    let firstFailureAt: number | undefined;
    for (let retries = 0; ; retries++) {
      const controller = new AbortController();
      const timer = setTimeout(
        () =>
          controller.abort(
            Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: "ETIMEDOUT" }),
          ),
        timeoutMs,
      );
      try {
        const out = await attempt(controller.signal);
        this.reached = true;
        return out;
      } catch (error) {
        const failed = controller.signal.aborted ? (controller.signal.reason as Error) : error;
        if (statusOf(failed) !== undefined) this.reached = true;
        const now = performance.now();
        firstFailureAt ??= now;
        const windowMs = this.config.retryWindowMs ?? DEFAULT_RETRY_WINDOW_MS;
        const left = retryTimeLeft(firstFailureAt, windowMs, this.reached, now);
        if (!isTransient(failed) || left <= 0) throw withAttempts(failed, retries + 1, now - firstFailureAt);
        await new Promise((r) => setTimeout(r, Math.min(left, backoffMs(retries))));
      } finally {
        clearTimeout(timer);
      }
    }
  }

  /** One request, its failure turned into one line that names the store and the operation, and no secret. */
  private async request<T>(operation: string, call: (container: ContainerClient) => Promise<T>): Promise<T> {
    try {
      return await call(await this.container());
    } catch (error) {
      throw this.translate(error, operation);
    }
  }

  private translate(error: unknown, operation: string): Error {
    if (error instanceof CapsuleError) return error;
    return storeError(`${this.description}: ${operation}`, this.classify(error), error, attemptsOf(error));
  }

  /** What an SDK or network error means. */
  private classify(error: unknown): StoreFailure {
    const status = statusOf(error);
    const code = errorCodeOf(error);
    const credentials = this.config.credentials;
    if (code === "ContainerNotFound") return { kind: "no-bucket", noun: "container" };
    if (status === 404) return { kind: "missing" };
    if (status === 412 || code === "ConditionNotMet" || code === "BlobAlreadyExists")
      return { kind: "precondition" };
    if (status === 401 || status === 403) {
      return {
        kind: "denied",
        reason: code ?? status,
        check: `${credentialHint(credentials)} and the container's permissions`,
      };
    }
    const name = (error as { name?: string } | undefined)?.name ?? "";
    if (name === "CredentialUnavailableError" || name === "AggregateAuthenticationError") {
      return {
        kind: "no-credentials",
        detail: `no Azure credentials found for ${accountOf(credentials)} (set AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN, or give the pod a workload or managed identity)`,
      };
    }
    const lost = lostConnection(error);
    if (lost) {
      return {
        kind: "unreachable",
        detail: `${lost.code}${lost.code === "ETIMEDOUT" ? `: ${firstLine(error)}` : ""}`,
      };
    }
    return { kind: "error", detail: `${code ?? status ?? (name || "error")}: ${firstLine(error)}` };
  }
}

async function serviceClient(config: AzureStoreConfig): Promise<BlobServiceClient> {
  const { AnonymousCredential, BlobServiceClient, StorageSharedKeyCredential } =
    await import("@azure/storage-blob");
  // Retries are capsule's own (a window, not a count): the SDK tries each request once.
  const options: StoragePipelineOptions = { retryOptions: { maxTries: 1 } };
  const credentials = config.credentials;
  if (credentials.kind === "connection-string") {
    return BlobServiceClient.fromConnectionString(credentials.connectionString, options);
  }
  const endpoint = (config.endpoint ?? `https://${credentials.account}.blob.core.windows.net`).replace(
    /\/+$/,
    "",
  );
  switch (credentials.kind) {
    case "shared-key":
      return new BlobServiceClient(
        endpoint,
        new StorageSharedKeyCredential(credentials.account, credentials.key),
        options,
      );
    case "sas":
      return new BlobServiceClient(
        `${endpoint}?${credentials.sasToken.replace(/^\?/, "")}`,
        new AnonymousCredential(),
        options,
      );
    case "identity":
      return new BlobServiceClient(endpoint, lazyDefaultCredential(), options);
  }
}

/**
 * `DefaultAzureCredential`, loaded on the first token request: @azure/identity is large, and only a run without a
 * key or SAS needs it.
 */
function lazyDefaultCredential() {
  let credential: Promise<import("@azure/identity").DefaultAzureCredential> | undefined;
  return {
    async getToken(scopes: string | string[], options?: import("@azure/identity").GetTokenOptions) {
      credential ??= import("@azure/identity").then(
        ({ DefaultAzureCredential }) => new DefaultAzureCredential(),
      );
      return (await credential).getToken(scopes, options);
    },
  };
}

function conditionsOf(options: PutOptions): { ifMatch?: string; ifNoneMatch?: string } {
  return {
    ...(options.ifMatch ? { ifMatch: options.ifMatch } : {}),
    ...(options.ifNoneMatch ? { ifNoneMatch: options.ifNoneMatch } : {}),
  };
}

function contentType(options: PutOptions): { blobContentType?: string } {
  return options.contentType ? { blobContentType: options.contentType } : {};
}

function md5(bytes: Uint8Array): Buffer {
  return createHash("md5").update(bytes).digest();
}

function statusOf(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown } | undefined)?.statusCode;
  return typeof status === "number" ? status : undefined;
}

/** Azure's own error code (`AuthenticationFailed`, `ContainerNotFound`…), from the body or the x-ms-error-code header. */
function errorCodeOf(error: unknown): string | undefined {
  const e = error as {
    code?: unknown;
    details?: { errorCode?: unknown };
    response?: { headers?: { get?(n: string): unknown } };
  };
  const fromDetails = e?.details?.errorCode;
  if (typeof fromDetails === "string" && fromDetails) return fromDetails;
  const fromHeader = e?.response?.headers?.get?.("x-ms-error-code");
  if (typeof fromHeader === "string" && fromHeader) return fromHeader;
  return typeof e?.code === "string" && /^[A-Z][A-Za-z]+$/.test(e.code) ? e.code : undefined;
}

function isTransient(error: unknown): boolean {
  const status = statusOf(error);
  if (status !== undefined) return TRANSIENT_STATUS.has(status);
  return lostConnection(error) !== undefined;
}

const ATTEMPTS = Symbol("capsule.attempts");

function withAttempts(error: unknown, attempts: number, waitedMs: number): unknown {
  if (attempts > 1 && error !== null && typeof error === "object") {
    (error as { [ATTEMPTS]?: string })[ATTEMPTS] =
      `, after ${attempts} attempts over ${Math.round(waitedMs / 1000)} s`;
  }
  return error;
}

function attemptsOf(error: unknown): string {
  return (error as { [ATTEMPTS]?: string } | undefined)?.[ATTEMPTS] ?? "";
}

/** Azure's messages run over several lines (RequestId, Time); the first says what went wrong. */
function firstLine(error: unknown): string {
  return redact(messageOf(error).split("\n")[0]?.trim() ?? "");
}

/**
 * The blob service endpoint, without credentials: `--endpoint`, a connection string's BlobEndpoint (or the one its
 * account, protocol and suffix make), else the account's public endpoint.
 */
function endpointOf(config: AzureStoreConfig): string {
  const credentials = config.credentials;
  let endpoint: string;
  if (credentials.kind === "connection-string") {
    const fields = new Map(
      credentials.connectionString
        .split(";")
        .filter((part) => part.includes("="))
        .map((part) => [
          part.slice(0, part.indexOf("=")).trim().toLowerCase(),
          part.slice(part.indexOf("=") + 1).trim(),
        ]),
    );
    endpoint =
      fields.get("blobendpoint") ??
      (fields.get("usedevelopmentstorage") === "true"
        ? "http://127.0.0.1:10000/devstoreaccount1"
        : `${fields.get("defaultendpointsprotocol") ?? "https"}://${fields.get("accountname") ?? "?"}.blob.${fields.get("endpointsuffix") ?? "core.windows.net"}`);
  } else {
    endpoint = config.endpoint ?? `https://${credentials.account}.blob.core.windows.net`;
  }
  return endpoint.replace(/[?#].*$/, "").replace(/\/+$/, "");
}

function accountOf(credentials: AzureCredentials): string {
  return credentials.kind === "connection-string"
    ? "the connection string's account"
    : `account ${credentials.account}`;
}

function credentialHint(credentials: AzureCredentials): string {
  switch (credentials.kind) {
    case "connection-string":
      return "AZURE_STORAGE_CONNECTION_STRING";
    case "shared-key":
      return "AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY";
    case "sas":
      return "AZURE_STORAGE_SAS_TOKEN (its permissions and expiry)";
    case "identity":
      return "the identity's role on the storage account";
  }
}
