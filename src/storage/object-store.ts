import type { Readable } from "node:stream";
import { NotFoundError } from "../domain/errors.js";

/**
 * The raw object store: bytes under keys, nothing about backups. Two implementations: S3 (any S3-compatible server)
 * and a local directory (`file:///path`) with the same key layout. Keys always use "/" and never start with one.
 */
export interface ObjectInfo {
  readonly key: string;
  readonly size: number;
  readonly etag?: string;
  readonly lastModified?: Date;
}

export interface PutOptions {
  /** Expected total size, used to pick a multipart part size that cannot hit the 10,000-part cap. */
  readonly sizeHint?: number;
  readonly contentType?: string;
  /** Write only if the current object still has this ETag (optimistic concurrency). */
  readonly ifMatch?: string;
  /** Write only if no object exists under the key. */
  readonly ifNoneMatch?: "*";
}

export interface PutResult {
  readonly etag?: string;
}

export interface ObjectStore {
  /** Where this store points, for messages; never holds credentials. */
  readonly description: string;
  put(key: string, body: Readable | Uint8Array | string, options?: PutOptions): Promise<PutResult>;
  /**
   * Stores what `write` puts into a file the store opened (a child process writing its stdout there), with the same
   * atomicity as `put`: the bytes never pass through this process on their way in. `observe` is handed them in
   * order as they land, read back from the file (each chunk only for the length of the call). `write` must stop when
   * its signal aborts. Only stores that keep files implement it; callers then fall back to `put`.
   */
  putWritten?(
    key: string,
    write: (fd: number, signal: AbortSignal) => Promise<void>,
    observe: (chunk: Uint8Array) => void,
  ): Promise<PutResult>;
  /** A stream of the object's bytes; rejects with `NotFoundError` if there is none. */
  get(key: string): Promise<Readable>;
  /**
   * A small object's bytes and the ETag of exactly those bytes, from one read — what an optimistic
   * read-modify-write needs (a HEAD then a GET could pair new bytes with an old tag). Rejects with `NotFoundError`.
   */
  getWithEtag(key: string): Promise<{ bytes: Buffer; etag?: string }>;
  /** The object's metadata, or `undefined` if there is none. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Every object whose key starts with `prefix`, in key order, paging internally. */
  list(prefix: string, options?: { pageSize?: number }): AsyncIterable<ObjectInfo>;
  /**
   * The names of the folders directly below `prefix` (which ends in "/"), without reading the keys inside them: how
   * the clusters of a bucket are found when each may hold a year of streamed WAL. Stores that cannot list by
   * delimiter do not implement it; callers then fall back to `list`.
   */
  listFolders?(prefix: string): AsyncIterable<string>;
  /** Deletes the object; deleting a missing object succeeds. */
  delete(key: string): Promise<void>;
  /** Checks that the store exists and answers, with a clear error if not. */
  check(): Promise<void>;
  /**
   * Aborts multipart uploads begun under `prefix` and never finished (a killed process leaves them, and they are
   * billed). Stores without multipart uploads do not implement it. Resolves to how many were aborted.
   */
  abortIncompleteUploads?(prefix: string): Promise<number>;
  /** The keys of the uploads `abortIncompleteUploads` would abort, for the integrity sweep to name. */
  incompleteUploadKeys?(prefix: string): Promise<string[]>;
}

/** An `ObjectInfo`, with the ETag and time only when the store gave them. */
export function objectInfo(
  key: string,
  size: number | undefined,
  etag?: string,
  lastModified?: Date,
): ObjectInfo {
  return { key, size: size ?? 0, ...(etag ? { etag } : {}), ...(lastModified ? { lastModified } : {}) };
}

/** What `read` resolves to, or undefined when it rejects with `NotFoundError`: for an object that may be absent. */
export async function unlessMissing<T>(read: Promise<T>): Promise<T | undefined> {
  try {
    return await read;
  } catch (error) {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  }
}

export async function readAll(stream: AsyncIterable<Buffer | Uint8Array | string>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream)
    chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks);
}

/** The object's bytes in memory: only for small objects such as statefiles. */
export async function getBytes(store: ObjectStore, key: string): Promise<Buffer> {
  return readAll(await store.get(key));
}
