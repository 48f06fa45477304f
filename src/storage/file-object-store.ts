/**
 * A local directory as an object store (`file:///path`), with the same key layout as S3: for laptops, demos, tests
 * and air-gapped copies. Writes are atomic: a temp file in the same directory, fsync, then rename, so a reader never
 * sees half an object and a crash leaves at most a stray `.capsule-tmp-*` file. A put returns only once the new name
 * is durable too (fsync of its directory, and of the parent of each directory it created): after a power cut, an
 * artifact its statefile calls committed is still there under its name.
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, open, readdir, rename, rm, rmdir, stat, type FileHandle } from "node:fs/promises";
import { setTimeout as delay } from "node:timers/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { CapsuleError, ErrorCode, NotFoundError, PreconditionFailedError } from "../domain/errors.js";
import { syncPath } from "../util/sync-path.js";
import type { ObjectInfo, ObjectStore, PutOptions, PutResult } from "./object-store.js";

const TMP_MARK = ".capsule-tmp-";
const LOCK_SUFFIX = ".capsule-lock";
/** A lock older than this was left by a crashed writer and is taken over. */
const STALE_LOCK_MS = 30_000;

export class FileObjectStore implements ObjectStore {
  readonly description: string;
  private readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.description = `file://${this.root}`;
  }

  async put(key: string, body: Readable | Uint8Array | string, options: PutOptions = {}): Promise<PutResult> {
    const target = this.pathOf(key);
    const created = await mkdir(path.dirname(target), { recursive: true });
    if (!options.ifMatch && !options.ifNoneMatch) return this.write(key, target, body, created);
    // Check-and-write under a lock file, so conditional writes are atomic across processes on this disk.
    const release = await acquireLock(`${target}${LOCK_SUFFIX}`);
    try {
      const current = await this.head(key);
      if (options.ifNoneMatch && current)
        throw new PreconditionFailedError(`${this.description}: ${key} exists`);
      if (options.ifMatch && current?.etag !== options.ifMatch) {
        throw new PreconditionFailedError(`${this.description}: ${key} changed since it was read`);
      }
      return await this.write(key, target, body, created);
    } finally {
      await release();
    }
  }

  /** `createdTop`: the first directory the put's mkdir created, if it created any. */
  private async write(
    key: string,
    target: string,
    body: Readable | Uint8Array | string,
    createdTop: string | undefined,
  ): Promise<PutResult> {
    const tmp = `${target}${TMP_MARK}${randomBytes(6).toString("hex")}`;
    try {
      const source = body instanceof Readable ? body : Readable.from([Buffer.from(body)]);
      await pipeline(source, createWriteStream(tmp, { flags: "wx" }));
      await syncPath(tmp);
      await rename(tmp, target);
    } catch (error) {
      await rm(tmp, { force: true });
      throw error;
    }
    for (const dir of directoriesHoldingNewNames(target, createdTop)) await syncPath(dir);
    const info = await this.head(key);
    return info?.etag ? { etag: info.etag } : {};
  }

  async putWritten(
    key: string,
    write: (fd: number, signal: AbortSignal) => Promise<void>,
    observe: (chunk: Uint8Array) => void,
  ): Promise<PutResult> {
    const target = this.pathOf(key);
    const created = await mkdir(path.dirname(target), { recursive: true });
    const tmp = `${target}${TMP_MARK}${randomBytes(6).toString("hex")}`;
    // Read and write: the writer gets this descriptor, and the bytes it wrote are read back through it.
    const file = await open(tmp, "wx+");
    const stop = new AbortController();
    let writing: Promise<void> | undefined;
    try {
      writing = write(file.fd, stop.signal);
      await readWhileWritten(file, writing, observe);
      await file.sync();
      await file.close();
      await rename(tmp, target);
    } catch (error) {
      // The writer must have stopped before its file goes, or it would write on into a name nobody removes.
      stop.abort(error);
      await writing?.catch(() => undefined);
      await file.close().catch(() => undefined);
      await rm(tmp, { force: true });
      throw error;
    }
    for (const dir of directoriesHoldingNewNames(target, created)) await syncPath(dir);
    const info = await this.head(key);
    return info?.etag ? { etag: info.etag } : {};
  }

  async get(key: string): Promise<Readable> {
    // Open first so a missing object rejects here, not later inside the consumer's pipeline.
    return createReadStream("", { fd: await this.openForGet(key) });
  }

  async getWithEtag(key: string): Promise<{ bytes: Buffer; etag?: string }> {
    // One open file: its stat and its bytes describe the same inode, even if a rename replaces the name meanwhile.
    const handle = await this.openForGet(key);
    try {
      const s = await handle.stat();
      return { bytes: await handle.readFile(), etag: etagOf(s.size, s.mtimeMs, s.ino) };
    } finally {
      await handle.close();
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const s = await stat(this.pathOf(key));
      if (!s.isFile()) return undefined;
      return { key, size: s.size, etag: etagOf(s.size, s.mtimeMs, s.ino), lastModified: s.mtime };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    await this.check();
    // Walk only the directory that can hold matches, then filter by the full prefix (S3 prefix semantics).
    const slash = prefix.lastIndexOf("/");
    const baseKey = slash >= 0 ? prefix.slice(0, slash + 1) : "";
    const keys: string[] = [];
    await this.walk(baseKey, keys);
    keys.sort();
    for (const key of keys) {
      if (!key.startsWith(prefix)) continue;
      const info = await this.head(key);
      if (info) yield info;
    }
  }

  async *listFolders(prefix: string): AsyncIterable<string> {
    await this.check();
    for (const name of (await this.entriesOf(prefix))
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort())
      yield name;
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
    // Remove directories the delete emptied, so deleted backups leave no folders behind.
    let dir = path.dirname(this.pathOf(key));
    while (dir.startsWith(this.root) && dir !== this.root) {
      try {
        await rmdir(dir);
      } catch {
        break;
      }
      dir = path.dirname(dir);
    }
  }

  async check(): Promise<void> {
    try {
      const s = await stat(this.root);
      if (!s.isDirectory()) throw new Error("not a directory");
    } catch {
      throw new CapsuleError(ErrorCode.StoreNoSuchBucket, `${this.description}: directory does not exist`);
    }
  }

  private async walk(dirKey: string, out: string[]): Promise<void> {
    for (const entry of await this.entriesOf(dirKey)) {
      const key = `${dirKey}${entry.name}`;
      if (entry.isDirectory()) await this.walk(`${key}/`, out);
      else if (entry.isFile() && !entry.name.includes(TMP_MARK) && !entry.name.endsWith(LOCK_SUFFIX))
        out.push(key);
    }
  }

  private openForGet(key: string) {
    return open(this.pathOf(key), "r").catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") throw new NotFoundError(`${this.description}: get ${key}: not found`);
      throw error;
    });
  }

  /** The entries of the directory a key prefix ending in "/" names; none when it does not exist. */
  private async entriesOf(dirKey: string) {
    try {
      return await readdir(this.pathOf(dirKey), { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw error;
    }
  }

  private pathOf(key: string): string {
    const resolved = path.resolve(this.root, key);
    if (resolved !== this.root && !resolved.startsWith(this.root + path.sep)) {
      throw new CapsuleError(ErrorCode.StoreError, `${this.description}: key escapes the store: ${key}`);
    }
    return resolved;
  }
}

async function acquireLock(file: string): Promise<() => Promise<void>> {
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(file, "wx");
      await handle.close();
      return () => rm(file, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const age = await stat(file).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      if (age > STALE_LOCK_MS) await rm(file, { force: true });
      else await new Promise((r) => setTimeout(r, Math.min(5 * 2 ** Math.min(attempt, 6), 200)));
    }
  }
}

/** How long the reader waits, once it has caught up with the writer, before it looks for more bytes. */
const CATCH_UP_WAIT_MS = 20;
const READ_BACK_BYTES = 1024 * 1024;

/**
 * Reads `file` from its start while `writing` fills it, handing each run of bytes to `observe`, until the writer
 * finished and every byte it wrote was read; rejects as soon as the writer fails. The bytes read back are the bytes
 * stored: what the caller hashes is what a later read will return.
 */
async function readWhileWritten(
  file: FileHandle,
  writing: Promise<void>,
  observe: (chunk: Uint8Array) => void,
): Promise<void> {
  let finished = false;
  let failure: { error: unknown } | undefined;
  const settled = writing.then(
    () => void (finished = true),
    (error: unknown) => void (failure = { error }),
  );
  // One buffer, reused: the chunks live only for `observe`'s call, so a long read-back makes no garbage.
  const buffer = Buffer.allocUnsafe(READ_BACK_BYTES);
  for (let position = 0; ;) {
    if (failure) throw failure.error;
    // Taken before the read: a writer done by then wrote nothing after it, so a read that finds no more bytes ends.
    const writerDone = finished;
    const { bytesRead } = await file.read(buffer, 0, buffer.length, position);
    if (bytesRead > 0) {
      observe(buffer.subarray(0, bytesRead));
      position += bytesRead;
    } else if (writerDone) return;
    else await Promise.race([settled, delay(CATCH_UP_WAIT_MS)]);
  }
}

function etagOf(size: number, mtimeMs: number, ino: number): string {
  return `"${createHash("sha1").update(`${size}:${mtimeMs}:${ino}`).digest("hex").slice(0, 16)}"`;
}

/**
 * The directories whose entries a put changed: the target's own (the renamed name), and, for each directory the put
 * created, the one holding it. fsync of a file does not make its name durable; fsync of its directory does.
 */
function directoriesHoldingNewNames(target: string, createdTop: string | undefined): string[] {
  const dirs = [path.dirname(target)];
  if (createdTop === undefined) return dirs;
  for (let dir = path.dirname(target); ; dir = path.dirname(dir)) {
    dirs.push(path.dirname(dir));
    if (dir === createdTop || dir === path.dirname(dir)) return dirs;
  }
}
