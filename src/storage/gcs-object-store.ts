/**
 * The Google Cloud Storage adapter: the only file that imports `@google-cloud/storage`. The store's ETag is the
 * object's generation, so the statefile protocol's conditional writes (docs/design.md §5) become GCS preconditions:
 * `ifMatch: gen` → `ifGenerationMatch: gen`, `ifNoneMatch: "*"` → `ifGenerationMatch: 0`. Streams go up as
 * resumable uploads in chunks (constant memory; a failed chunk is resent from its buffer), both directions are checked
 * against the crc32c GCS computed, and a download cut off mid-stream resumes from the byte it stopped at, pinned to the
 * generation it began with (docs/adr/0013).
 *
 * Incomplete uploads: a resumable session a killed process leaves holds no object and is not billed as storage; GCS
 * expires it after a week. There is nothing to list or abort, so `abortIncompleteUploads` is not implemented.
 */
import { pipeline } from "node:stream/promises";
import { EventEmitter } from "node:events";
import { Readable } from "node:stream";
import type { Bucket, Storage } from "@google-cloud/storage";
import type { AuthClient } from "google-auth-library";
import { loadOnUse } from "../util/load-on-use.js";
import {
  CapsuleError,
  ErrorCode,
  NotFoundError,
  PreconditionFailedError,
  messageOf,
} from "../domain/errors.js";
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
import { ResumingReadable } from "./resuming-readable.js";
import {
  BACKOFF_CAP_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_RETRY_WINDOW_MS,
} from "./retry-window.js";
import { bucketMustExist, changedWhileRead, storeError, type StoreFailure } from "./store-failure.js";

// The SDK is loaded with the first GCS store, not with capsule (util/load-on-use.ts).
const gcsSdk = loadOnUse<typeof import("@google-cloud/storage")>("@google-cloud/storage");
const googleAuth = loadOnUse<typeof import("google-auth-library")>("google-auth-library");

export interface GcsStoreConfig {
  readonly bucket: string;
  /**
   * Another endpoint than storage.googleapis.com. With `emulator` (STORAGE_EMULATOR_HOST), requests carry no
   * credentials, as Google's client libraries do; otherwise (a private endpoint) they are authenticated.
   */
  readonly endpoint?: string;
  readonly emulator?: boolean;
  /**
   * The parsed key file (GOOGLE_APPLICATION_CREDENTIALS): a service account's key or a user's refresh token. Unset
   * means Application Default Credentials (workload identity, the metadata server, gcloud's login).
   */
  readonly credentials?: GoogleCredentials;
  readonly projectId?: string;
  /** How long a request failing with a transient error is retried, with backoff. @default 60 000 ms */
  readonly retryWindowMs?: number;
  /** A request not answered within this long is aborted and retried. @default 120 000 ms */
  readonly requestTimeoutMs?: number;
  /** A download whose body sends nothing for this long while read is cut and resumed. @default 30 000 ms */
  readonly idleTimeoutMs?: number;
  /** Bytes per resumable-upload request, a multiple of 256 KiB; the memory an upload holds. @default 8 MiB */
  readonly chunkSize?: number;
}

/** The fields of a Google credentials file this adapter reads. */
export interface GoogleCredentials {
  readonly type: string;
  readonly client_email?: string;
  readonly private_key?: string;
  readonly private_key_id?: string;
  readonly client_id?: string;
  readonly client_secret?: string;
  readonly refresh_token?: string;
  readonly universe_domain?: string;
}

/** Objects read, written and deleted, and the bucket's metadata: nothing more. */
const SCOPES = ["https://www.googleapis.com/auth/devstorage.read_write"];

/** Google's advice for chunked resumable uploads: at least 8 MiB a request; memory stays about one chunk. */
export const DEFAULT_CHUNK_SIZE = 8 << 20;
const CHUNK_QUANTUM = 256 << 10;
/** The client counts its backoff in seconds. */
const BACKOFF_CAP_S = BACKOFF_CAP_MS / 1000;
/**
 * Retries until the store has answered once: backoff 1 + 2 + 4 s, so an endpoint that was never there (a typo, a
 * wrong port) fails in seconds. Afterwards: enough for the window (backoff doubling to the 5 s cap).
 */
const FIRST_CONTACT_RETRIES = 3;
/** A getWithEtag whose object is replaced between its metadata and its bytes tries again this many times. */
const PINNED_READ_ATTEMPTS = 3;

export class GcsObjectStore implements ObjectStore {
  readonly description: string;
  private readonly storage: Storage;
  private readonly bucket: Bucket;
  private readonly chunkSize: number;
  private readonly requestTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  /**
   * Whether the store has answered once: only a store that was there can be "away", so a refused connection is
   * retried only then, and an endpoint that was never there (a typo, a wrong port) fails at once.
   */
  private reached = false;

  constructor(config: GcsStoreConfig) {
    this.description = `gs://${config.bucket}${config.endpoint ? ` at ${config.endpoint}` : ""}`;
    const chunkSize = config.chunkSize ?? DEFAULT_CHUNK_SIZE;
    if (chunkSize < CHUNK_QUANTUM || chunkSize % CHUNK_QUANTUM !== 0) {
      throw new CapsuleError(
        ErrorCode.Config,
        `GCS chunk size must be a multiple of 256 KiB (got ${chunkSize})`,
      );
    }
    this.chunkSize = chunkSize;
    this.requestTimeoutMs = config.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.idleTimeoutMs = config.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    const { IdempotencyStrategy, Storage } = gcsSdk();
    this.storage = new Storage({
      ...(config.endpoint ? { apiEndpoint: config.endpoint } : {}),
      ...(config.endpoint && !config.emulator ? { useAuthWithCustomEndpoint: true } : {}),
      ...(config.credentials ? { authClient: authClientOf(config.credentials) } : {}),
      ...(config.projectId ? { projectId: config.projectId } : {}),
      timeout: this.requestTimeoutMs,
      retryOptions: {
        autoRetry: true,
        // The client retries a request that got no answer (a refused connection) this many times whatever
        // retryableErrorFn says; raised to cover the window once the store has answered (see markReached).
        maxRetries: FIRST_CONTACT_RETRIES,
        totalTimeout: Math.ceil((config.retryWindowMs ?? DEFAULT_RETRY_WINDOW_MS) / 1000),
        maxRetryDelay: BACKOFF_CAP_S,
        retryDelayMultiplier: 2,
        // Unconditional writes are retried too: a resumable chunk is resent at the offset the server reports, and a
        // whole-object put of the same bytes is the same object (the S3 adapter retries its puts alike).
        idempotencyStrategy: IdempotencyStrategy.RetryAlways,
        retryableErrorFn: (error) => this.retryable(error),
      },
    });
    this.bucket = this.storage.bucket(config.bucket);
    this.windowRetries = Math.max(
      FIRST_CONTACT_RETRIES,
      Math.ceil((config.retryWindowMs ?? DEFAULT_RETRY_WINDOW_MS) / 1000 / BACKOFF_CAP_S),
    );
  }

  private readonly windowRetries: number;

  /** The store answered: from now on a transient failure is ridden out for the whole window. */
  private markReached(): void {
    if (this.reached) return;
    this.reached = true;
    // The client reads its retry options on every request, from this one object.
    this.storage.retryOptions.maxRetries = this.windowRetries;
  }

  async put(key: string, body: Readable | Uint8Array | string, options: PutOptions = {}): Promise<PutResult> {
    const preconditionOpts = this.precondition(key, options);
    // Either way the bytes are checked against the crc32c GCS computed.
    const settings = {
      validation: "crc32c" as const,
      ...(options.contentType ? { contentType: options.contentType } : {}),
      ...(preconditionOpts ? { preconditionOpts } : {}),
    };
    const file = this.bucket.file(key);
    await this.request(`put ${key}`, async () => {
      if (body instanceof Readable) {
        // Resumable-upload requests get no timeout from the client's options: a chunk sent to a server gone silent
        // would wait forever. This one bounds each chunk's request, which is then retried from the server's offset.
        // (The client's type says an interceptor returns a whole request; for uploads it merges partial options.)
        file.interceptors.push({
          request: (request) => ({ ...request, timeout: this.requestTimeoutMs }) as never,
        });
        // The client holds one chunk at a time and resends it on failure; while it waits, the pipeline stops
        // reading the source, so the producer blocks.
        await pipeline(
          body,
          file.createWriteStream({ resumable: true, chunkSize: this.chunkSize, ...settings }),
        );
      } else {
        const bytes = typeof body === "string" ? Buffer.from(body) : Buffer.from(body);
        // One request for a small object: a multipart upload.
        await file.save(bytes, { resumable: false, ...settings });
      }
    });
    const generation = file.metadata.generation;
    return generation === undefined ? {} : { etag: String(generation) };
  }

  /**
   * The object's bytes, read at the generation its metadata named; a connection cut mid-body is resumed with a
   * Range from the byte it stopped at, at that same generation, so a replaced object is refused, not spliced.
   */
  async get(key: string): Promise<Readable> {
    const generation = (await this.metadata(key, `get ${key}`)).generation;
    // The whole object is checked against its crc32c; a resumed tail cannot be (capsule's sha256 still is).
    const open = (offset: number): Readable => this.readStream(key, generation, offset);
    // The generation it began with is gone: replaced or deleted since.
    const changed = () => changedWhileRead(`${this.description}: get ${key}`);
    return new ResumingReadable(
      open(0),
      async (offset) => {
        if (!(await unlessMissing(this.metadata(key, `get ${key}`, generation)))) throw changed();
        return open(offset);
      },
      (error) => (statusOf(error) === 404 ? changed() : this.translate(error, `get ${key}`)),
      {
        isFatal: (error) => isChecksumMismatch(error) || statusOf(error) === 404,
        idleTimeoutMs: this.idleTimeoutMs,
      },
    );
  }

  async getWithEtag(key: string): Promise<{ bytes: Buffer; etag?: string }> {
    for (let attempt = 1; ; attempt++) {
      const { generation } = await this.metadata(key, `get ${key}`);
      try {
        const bytes = await readAll(this.readStream(key, generation, 0));
        return { bytes, etag: String(generation) };
      } catch (error) {
        const translated = this.translate(error, `get ${key}`);
        // Replaced between the two requests: the pinned generation is gone, so read the new one.
        if (!(translated instanceof NotFoundError) || attempt >= PINNED_READ_ATTEMPTS) throw translated;
      }
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const found = await unlessMissing(this.metadata(key, `head ${key}`));
    return found && objectInfo(key, found.size, String(found.generation), found.updated);
  }

  async *list(prefix: string, options: { pageSize?: number } = {}): AsyncIterable<ObjectInfo> {
    let pageToken: string | undefined;
    do {
      const token = pageToken;
      const [files, next] = await bucketMustExist(
        this.request(`list ${prefix}`, () =>
          this.bucket.getFiles({
            prefix,
            maxResults: options.pageSize ?? 1000,
            autoPaginate: false,
            ...(token ? { pageToken: token } : {}),
          }),
        ),
        this.description,
        "bucket",
      );
      for (const { name, metadata: m } of files) {
        const etag = m.generation !== undefined ? String(m.generation) : undefined;
        yield objectInfo(name, Number(m.size ?? 0), etag, m.updated ? new Date(m.updated) : undefined);
      }
      pageToken = (next as { pageToken?: string } | null | undefined)?.pageToken;
    } while (pageToken);
  }

  async delete(key: string): Promise<void> {
    await unlessMissing(
      this.request(`delete ${key}`, () => this.bucket.file(key).delete({ ignoreNotFound: true })),
    );
  }

  async check(): Promise<void> {
    await bucketMustExist(
      this.request("check bucket", () => this.bucket.getMetadata()),
      this.description,
      "bucket",
    );
  }

  /** The bytes of one generation from `offset`; a whole read is checked against the object's crc32c. */
  private readStream(key: string, generation: number, offset: number): Readable {
    const stream = this.bucket
      .file(key, { generation })
      .createReadStream(offset > 0 ? { start: offset } : { validation: "crc32c" });
    // The client and its HTTP layer pipe the same response body twice, which passes Node's default of ten error
    // listeners and prints a "possible leak" warning on stderr for every download; it is no leak (each body is
    // new), and capsule's stderr is one line per failure.
    stream.once("response", (response: unknown) => {
      if (response instanceof EventEmitter) response.setMaxListeners(32);
    });
    return stream;
  }

  private async metadata(
    key: string,
    operation: string,
    generation?: number,
  ): Promise<{ generation: number; size: number; updated?: Date }> {
    const [m] = await this.request(operation, () =>
      this.bucket.file(key, generation === undefined ? {} : { generation }).getMetadata(),
    );
    return {
      generation: Number(m.generation),
      size: Number(m.size ?? 0),
      ...(m.updated ? { updated: new Date(m.updated) } : {}),
    };
  }

  private precondition(key: string, options: PutOptions): { ifGenerationMatch: number } | undefined {
    if (options.ifNoneMatch === "*") return { ifGenerationMatch: 0 };
    if (options.ifMatch === undefined) return undefined;
    // A tag this adapter did not hand out (another store's ETag) cannot match any generation.
    if (!/^[1-9]\d*$/.test(options.ifMatch)) {
      throw new PreconditionFailedError(
        `${this.description}: put ${key}: ${JSON.stringify(options.ifMatch)} is not a GCS generation`,
      );
    }
    return { ifGenerationMatch: Number(options.ifMatch) };
  }

  private retryable(error: unknown): boolean {
    const { RETRYABLE_ERR_FN_DEFAULT } = gcsSdk();
    if (RETRYABLE_ERR_FN_DEFAULT(error as Parameters<typeof RETRYABLE_ERR_FN_DEFAULT>[0])) return true;
    return this.reached && (lostConnection(error) !== undefined || isTimeout(error));
  }

  /** One call to the client; its failure turned into one clear line that names the store and the operation. */
  private async request<T>(operation: string, call: () => Promise<T>): Promise<T> {
    try {
      const out = await call();
      this.markReached();
      return out;
    } catch (error) {
      throw this.translate(error, operation);
    }
  }

  private translate(error: unknown, operation: string): Error {
    if (error instanceof CapsuleError) return error;
    const where = `${this.description}: ${operation}`;
    if (isChecksumMismatch(error)) {
      const stored = codeOf(error) === "FILE_NO_UPLOAD";
      return new CapsuleError(
        ErrorCode.ChecksumMismatch,
        `${where}: checksum mismatch: the bytes ${stored ? "GCS stored" : "read"} do not match their crc32c${stored ? " (the object was deleted)" : ""}`,
        { cause: error },
      );
    }
    const failure = this.classify(error);
    // A missing bucket is the same whatever was asked of it.
    return storeError(failure.kind === "no-bucket" ? this.description : where, failure, error);
  }

  /** What a client or network error means. */
  private classify(error: unknown): StoreFailure {
    const status = statusOf(error);
    const message = messageOf(error);
    if (status === 404) {
      return /bucket does not exist/i.test(message)
        ? { kind: "no-bucket", noun: "bucket" }
        : { kind: "missing" };
    }
    if (status === 412) return { kind: "precondition" };
    if (/Could not load the default credentials|Unable to detect a Project Id/i.test(message)) {
      return {
        kind: "no-credentials",
        detail:
          "no Google credentials found (set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or use Application Default Credentials)",
      };
    }
    if (
      status === 401 ||
      status === 403 ||
      /invalid_grant|invalid_client|unauthorized_client/.test(message)
    ) {
      return {
        kind: "denied",
        reason: firstLine(message) || status,
        check: "GOOGLE_APPLICATION_CREDENTIALS and the account's roles on the bucket",
      };
    }
    const lost = lostConnection(error);
    if (lost) return { kind: "unreachable", detail: lost.code };
    if (isTimeout(error))
      return { kind: "unreachable", detail: `no answer within ${this.requestTimeoutMs} ms` };
    return { kind: "error", detail: `${status ? `HTTP ${status}: ` : ""}${firstLine(message)}` };
  }
}

/**
 * The client for a key file's credentials, built by its type: the library's generic loaders (`keyFilename`,
 * `credentials`, `fromJSON`) are deprecated and warn on stderr.
 */
function authClientOf(credentials: GoogleCredentials): AuthClient {
  const universe = credentials.universe_domain ? { universeDomain: credentials.universe_domain } : {};
  const { JWT, UserRefreshClient } = googleAuth();
  if (credentials.type === "service_account") {
    if (!credentials.client_email || !credentials.private_key) {
      throw new CapsuleError(
        ErrorCode.Config,
        "GOOGLE_APPLICATION_CREDENTIALS: the service-account key has no client_email or private_key",
      );
    }
    return new JWT({
      email: credentials.client_email,
      key: credentials.private_key,
      ...(credentials.private_key_id ? { keyId: credentials.private_key_id } : {}),
      scopes: SCOPES,
      ...universe,
    });
  }
  if (credentials.type === "authorized_user") {
    return new UserRefreshClient({
      ...(credentials.client_id ? { clientId: credentials.client_id } : {}),
      ...(credentials.client_secret ? { clientSecret: credentials.client_secret } : {}),
      ...(credentials.refresh_token ? { refreshToken: credentials.refresh_token } : {}),
      ...universe,
    });
  }
  throw new CapsuleError(
    ErrorCode.Config,
    `GOOGLE_APPLICATION_CREDENTIALS: credentials of type ${JSON.stringify(credentials.type)} are not supported here (use a service-account key, or Application Default Credentials)`,
  );
}

/** The HTTP status an error of the client carries: ApiError's numeric `code`, or a gaxios response's status. */
function statusOf(error: unknown): number | undefined {
  const e = error as { code?: unknown; status?: unknown; response?: { status?: unknown } } | undefined;
  if (typeof e?.code === "number") return e.code;
  if (typeof e?.status === "number") return e.status;
  if (typeof e?.response?.status === "number") return e.response.status;
  return undefined;
}

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === "string" ? code : undefined;
}

/** A request this adapter's timeout aborted (the error, or its cause, as fetch and gaxios report it). */
function isTimeout(error: unknown): boolean {
  let e = error as { name?: unknown; code?: unknown; cause?: unknown } | undefined;
  for (let depth = 0; e && depth < 4; depth++) {
    if (
      e.name === "AbortError" ||
      e.name === "TimeoutError" ||
      e.code === "ABORT_ERR" ||
      e.code === "ETIMEDOUT"
    )
      return true;
    e = e.cause as typeof e;
  }
  return false;
}

function isChecksumMismatch(error: unknown): boolean {
  const code = codeOf(error);
  return (
    code === "CONTENT_DOWNLOAD_MISMATCH" || code === "FILE_NO_UPLOAD" || code === "FILE_NO_UPLOAD_DELETE"
  );
}

function firstLine(text: string): string {
  return text.split("\n")[0]!.trim();
}
