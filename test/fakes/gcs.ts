/**
 * FAKE Google Cloud Storage — a wire-level test double of the GCS JSON API, not a storage service. No GCS emulator
 * can run on these machines (docs/design.md §12), so this is a real HTTP server on 127.0.0.1 (random port) that
 * answers what capsule's GCS adapter sends through `@google-cloud/storage` unchanged, with GCS's URL paths, status
 * codes, headers and JSON bodies. Objects live in memory.
 *
 *   GET    /storage/v1/b/{bucket}                      bucket metadata; 404 for a missing bucket
 *   GET    /storage/v1/b/{bucket}/o                    list: prefix, delimiter, maxResults, pageToken/nextPageToken,
 *                                                      in lexicographic (byte) order of names
 *   GET    /storage/v1/b/{bucket}/o/{object}           metadata; `alt=media` the bytes (Range → 206), with
 *                                                      x-goog-generation, x-goog-hash and x-goog-stored-content-encoding
 *   DELETE /storage/v1/b/{bucket}/o/{object}           204; 404 when missing
 *   POST   /upload/storage/v1/b/{bucket}/o             uploadType=media | multipart (multipart/related) | resumable
 *                                                      (200 with a session URI in Location)
 *   PUT    {session URI}                               chunks with Content-Range `bytes a-b/total|*`; 308 with Range
 *                                                      for an unfinished upload, `bytes *\/total|*` asks the status;
 *                                                      the last chunk, or one open-ended `bytes a-*\/*` request,
 *                                                      creates the object (200 + metadata)
 *
 * What it gets right, because capsule depends on it:
 * - every write makes a new generation (a number, sent as a string); `ifGenerationMatch` (0 = must not exist) is
 *   checked when a resumable session is created and again when its last chunk lands, and on reads, deletes and
 *   metadata gets: 412 conditionNotMet on mismatch; `generation=` on a read pins one (404 once it is replaced);
 * - crc32c (Castagnoli, big-endian, base64) and md5Hash (base64) in metadata and in x-goog-hash; an `X-Goog-Hash`
 *   sent with the last chunk or a media upload is checked (400 on mismatch), as GCS does;
 * - non-final resumable chunks must be multiples of 256 KiB; a chunk that does not start at the persisted offset
 *   is answered 308 with the persisted Range (GCS ignores it), so the client resends;
 * - error bodies `{"error":{"code","message","errors":[{"message","domain","reason"}]}}`.
 * The `/storage/v1` prefix is optional, as it is for `STORAGE_EMULATOR_HOST` (the Node client uses the host as its
 * base URL). Any bearer token is accepted, and none, unless `acceptedTokens` is set.
 *
 * Test hooks (not wire behaviour): `createBucket`, `corruptObject` (flip a stored byte, metadata unchanged),
 * `cutNextDownloads` (drop the connection after some bytes of a body), `stallNextDownloads` (go silent after some),
 * `hangNextUploadChunks` (never answer),
 * `corruptNextUpload` (store the next upload's bytes flipped and report their true checksums, as a broken path
 * would), `objects`, `sessions`, `requests`.
 */
import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface FakeObject {
  readonly name: string;
  readonly generation: number;
  readonly bytes: Buffer;
  readonly contentType: string;
  /** What GCS computed when the object was written (a corrupted object keeps these). */
  readonly crc32c: string;
  readonly md5Hash: string;
  readonly created: Date;
}

interface Session {
  readonly id: string;
  readonly bucket: string;
  readonly name: string;
  readonly contentType: string;
  readonly ifGenerationMatch: number | undefined;
  readonly chunks: Buffer[];
  received: number;
  done: boolean;
}

interface Reply {
  status: number;
  body?: unknown;
  raw?: Buffer;
  headers?: Record<string, string>;
}

const QUANTUM = 256 * 1024;
let generationClock = Date.now() * 1000;

export class FakeGcs {
  readonly buckets = new Map<string, Map<string, FakeObject>>();
  readonly sessions = new Map<string, Session>();
  /** "METHOD path?query[ Range: …]" of every request, in order. */
  readonly requests: string[] = [];
  /** When set, requests must carry one of these bearer tokens (401 authError otherwise), as GCS does. */
  acceptedTokens: Set<string> | undefined;
  private readonly sockets = new Set<Socket>();
  private corruptUploads = 0;
  private unreferenced = false;
  private cuts: number[] = [];
  private hangs = 0;
  private stalls: number[] = [];
  private readonly hung = new Set<ServerResponse>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<FakeGcs> {
    const holder: { fake?: FakeGcs } = {};
    const server = createServer((req, res) => void holder.fake!.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const fake = new FakeGcs(server, `http://127.0.0.1:${port}`);
    holder.fake = fake;
    server.on("connection", (socket: Socket) => {
      fake.sockets.add(socket);
      if (fake.unreferenced) socket.unref();
      socket.on("close", () => fake.sockets.delete(socket));
    });
    return fake;
  }

  /** Lets the process exit while the fake still listens, for a fake shared by a whole test file. */
  unref(): this {
    this.unreferenced = true;
    this.server.unref();
    for (const socket of this.sockets) socket.unref();
    return this;
  }

  async close(): Promise<void> {
    for (const res of this.hung) res.destroy();
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  createBucket(name: string): void {
    if (!this.buckets.has(name)) this.buckets.set(name, new Map());
  }

  objects(bucket: string): Map<string, FakeObject> {
    const objects = this.buckets.get(bucket);
    if (!objects) throw new Error(`fake GCS: no bucket ${bucket}`);
    return objects;
  }

  /** Flips one stored byte of the object without touching its metadata: what bit rot or a bad disk would do. */
  corruptObject(bucket: string, name: string, at = 0): void {
    const object = this.objects(bucket).get(name);
    if (!object) throw new Error(`fake GCS: no object ${name}`);
    const bytes = Buffer.from(object.bytes);
    bytes[at] = bytes[at]! ^ 0xff;
    this.objects(bucket).set(name, { ...object, bytes });
  }

  /** The next `count` uploads are stored with a flipped byte, and their metadata tells the truth about that. */
  corruptNextUpload(count = 1): void {
    this.corruptUploads += count;
  }

  /** The next `count` resumable chunks are read and dropped, and never answered: a server gone silent. */
  hangNextUploadChunks(count = 1): void {
    this.hangs += count;
  }

  /** The next media downloads send this many bytes of their body, then nothing more: a server gone silent. */
  stallNextDownloads(...afterBytes: number[]): void {
    this.stalls.push(...afterBytes);
  }

  /** The next media downloads send this many bytes of their body, then the connection drops. */
  cutNextDownloads(...afterBytes: number[]): void {
    this.cuts.push(...afterBytes);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.url);
    const range = req.headers.range ? ` Range: ${req.headers.range}` : "";
    this.requests.push(`${req.method} ${url.pathname}${url.search}${range}`);
    let reply: Reply;
    try {
      const body = await readBody(req);
      if (this.hangs > 0 && req.method === "PUT" && url.searchParams.has("upload_id") && body.length > 0) {
        this.hangs--;
        this.hung.add(res);
        res.on("close", () => this.hung.delete(res));
        return;
      }
      reply = this.route(req, url, body);
    } catch (error) {
      reply = failure(500, error instanceof Error ? error.message : String(error), "backendError");
    }
    const headers: Record<string, string> = { ...reply.headers };
    let payload: Buffer | undefined = reply.raw;
    if (reply.body !== undefined) {
      payload = Buffer.from(JSON.stringify(reply.body));
      headers["content-type"] = "application/json; charset=UTF-8";
    }
    headers["content-length"] = String(payload?.length ?? 0);
    res.writeHead(reply.status, headers);
    const cut = payload && reply.body === undefined && reply.status < 300 ? this.cuts.shift() : undefined;
    if (cut !== undefined && payload) {
      res.write(payload.subarray(0, cut), () => res.socket?.destroy());
      return;
    }
    const stall = payload && reply.body === undefined && reply.status < 300 ? this.stalls.shift() : undefined;
    if (stall !== undefined && payload) {
      this.hung.add(res);
      res.on("close", () => this.hung.delete(res));
      res.write(payload.subarray(0, stall));
      return;
    }
    res.end(req.method === "HEAD" ? undefined : payload);
  }

  private route(req: IncomingMessage, url: URL, body: Buffer): Reply {
    const method = req.method ?? "GET";
    const path = url.pathname;
    if (this.acceptedTokens) {
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
      if (!token || !this.acceptedTokens.has(token)) {
        return failure(401, "Invalid Credentials", "authError", { location: "Authorization" });
      }
    }
    const upload = /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/.exec(path);
    if (upload) {
      const bucket = decodeURIComponent(upload[1]!);
      if (method === "POST") return this.startUpload(bucket, url, req, body);
      if (method === "PUT") return this.uploadChunk(url, req, body);
      return failure(405, "Method not allowed", "methodNotAllowed");
    }
    const rest = path.replace(/^\/(download\/)?storage\/v1(?=\/)/, "");
    const object = /^\/b\/([^/]+)\/o\/(.+)$/.exec(rest);
    if (object) {
      const bucket = decodeURIComponent(object[1]!);
      const name = decodeURIComponent(object[2]!);
      if (method === "GET") return this.getObject(bucket, name, url, req);
      if (method === "DELETE") return this.deleteObject(bucket, name, url);
      return failure(405, "Method not allowed", "methodNotAllowed");
    }
    const list = /^\/b\/([^/]+)\/o\/?$/.exec(rest);
    if (list && method === "GET") return this.list(decodeURIComponent(list[1]!), url);
    const bucket = /^\/b\/([^/]+)\/?$/.exec(rest);
    if (bucket && method === "GET") {
      const name = decodeURIComponent(bucket[1]!);
      if (!this.buckets.has(name)) return noBucket();
      return {
        status: 200,
        body: {
          kind: "storage#bucket",
          id: name,
          name,
          location: "US",
          storageClass: "STANDARD",
          metageneration: "1",
          timeCreated: new Date(0).toISOString(),
          updated: new Date(0).toISOString(),
        },
      };
    }
    return failure(404, `Not Found: ${method} ${path}`, "notFound");
  }

  private getObject(bucket: string, name: string, url: URL, req: IncomingMessage): Reply {
    const objects = this.buckets.get(bucket);
    if (!objects) return noBucket();
    const found = this.current(objects, bucket, name, url);
    if ("status" in found) return found;
    const object = found;
    if (url.searchParams.get("alt") !== "media") return { status: 200, body: this.resource(bucket, object) };
    const headers: Record<string, string> = {
      "content-type": object.contentType,
      "x-goog-generation": String(object.generation),
      "x-goog-metageneration": "1",
      "x-goog-hash": `crc32c=${object.crc32c},md5=${object.md5Hash}`,
      "x-goog-stored-content-encoding": "identity",
      "x-goog-stored-content-length": String(object.bytes.length),
      "accept-ranges": "bytes",
    };
    const range = req.headers.range;
    if (range) {
      const size = object.bytes.length;
      const m = /^bytes=(\d*)-(\d*)$/.exec(range);
      if (!m || (m[1] === "" && m[2] === "")) return failure(400, `Invalid range ${range}`, "invalid");
      let start: number;
      let end: number;
      if (m[1] === "") {
        start = Math.max(0, size - Number(m[2]));
        end = size - 1;
      } else {
        start = Number(m[1]);
        end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
      }
      if (start >= size && size > 0) {
        return {
          status: 416,
          body: errorBody(416, "Request range not satisfiable", "requestedRangeNotSatisfiable"),
          headers: { "content-range": `bytes */${size}` },
        };
      }
      // A part of the object cannot be checked against the whole object's hashes: GCS leaves x-goog-hash as is,
      // and clients skip validation for ranged reads.
      return {
        status: 206,
        raw: object.bytes.subarray(start, end + 1),
        headers: { ...headers, "content-range": `bytes ${start}-${end}/${size}` },
      };
    }
    return { status: 200, raw: object.bytes, headers };
  }

  private deleteObject(bucket: string, name: string, url: URL): Reply {
    const objects = this.buckets.get(bucket);
    if (!objects) return noBucket();
    const found = this.current(objects, bucket, name, url);
    if ("status" in found) return found;
    objects.delete(name);
    return { status: 204 };
  }

  /** The object a request names, honouring `generation` and `ifGeneration(Not)Match`, or the error reply. */
  private current(
    objects: Map<string, FakeObject>,
    bucket: string,
    name: string,
    url: URL,
  ): FakeObject | Reply {
    const object = objects.get(name);
    const pinned = url.searchParams.get("generation");
    const precondition = this.precondition(object, url);
    if (precondition) return precondition;
    if (!object || (pinned !== null && Number(pinned) !== object.generation)) {
      return failure(404, `No such object: ${bucket}/${name}`, "notFound");
    }
    return object;
  }

  private precondition(object: FakeObject | undefined, url: URL): Reply | undefined {
    const match = url.searchParams.get("ifGenerationMatch");
    const notMatch = url.searchParams.get("ifGenerationNotMatch");
    const generation = object?.generation ?? 0;
    if (match !== null && Number(match) !== generation) return conditionNotMet();
    if (notMatch !== null && Number(notMatch) === generation) return { status: 304 };
    return undefined;
  }

  private list(bucket: string, url: URL): Reply {
    const objects = this.buckets.get(bucket);
    if (!objects) return noBucket();
    const prefix = url.searchParams.get("prefix") ?? "";
    const delimiter = url.searchParams.get("delimiter") ?? "";
    const max = Math.min(Number(url.searchParams.get("maxResults") ?? 1000) || 1000, 1000);
    const token = url.searchParams.get("pageToken");
    const after = token ? Buffer.from(token, "base64url").toString("utf8") : undefined;
    // GCS orders names by their UTF-8 bytes, which Buffer.compare gives and localeCompare would not.
    const names = [...objects.keys()]
      .filter(
        (n) =>
          n.startsWith(prefix) && (after === undefined || Buffer.compare(bytesOf(n), bytesOf(after)) > 0),
      )
      .sort((a, b) => Buffer.compare(bytesOf(a), bytesOf(b)));
    const items: unknown[] = [];
    const prefixes = new Set<string>();
    let last: string | undefined;
    let more = false;
    for (const name of names) {
      const cut = delimiter ? name.indexOf(delimiter, prefix.length) : -1;
      const common = cut >= 0 ? name.slice(0, cut + delimiter.length) : undefined;
      // The rest of a common prefix already listed takes no room on the page.
      if (common !== undefined && prefixes.has(common)) {
        last = name;
        continue;
      }
      if (items.length + prefixes.size >= max) {
        more = true;
        break;
      }
      last = name;
      if (common !== undefined) prefixes.add(common);
      else items.push(this.resource(bucket, objects.get(name)!));
    }
    return {
      status: 200,
      body: {
        kind: "storage#objects",
        ...(more && last !== undefined ? { nextPageToken: Buffer.from(last).toString("base64url") } : {}),
        ...(prefixes.size > 0 ? { prefixes: [...prefixes] } : {}),
        ...(items.length > 0 ? { items } : {}),
      },
    };
  }

  private startUpload(bucket: string, url: URL, req: IncomingMessage, body: Buffer): Reply {
    const objects = this.buckets.get(bucket);
    if (!objects) return noBucket();
    const type = url.searchParams.get("uploadType");
    const ifGenerationMatch = url.searchParams.get("ifGenerationMatch");
    const name = url.searchParams.get("name");
    if (type === "resumable") {
      const metadata = body.length > 0 ? (JSON.parse(body.toString("utf8")) as { name?: string }) : {};
      const objectName = name ?? metadata.name;
      if (!objectName) return failure(400, "Required parameter: name", "required");
      const early = this.precondition(objects.get(objectName), url);
      if (early) return early;
      const id = randomBytes(24).toString("base64url");
      this.sessions.set(id, {
        id,
        bucket,
        name: objectName,
        contentType: headerOf(req, "x-upload-content-type") ?? "application/octet-stream",
        ifGenerationMatch: ifGenerationMatch === null ? undefined : Number(ifGenerationMatch),
        chunks: [],
        received: 0,
        done: false,
      });
      const location = `${this.url}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o?uploadType=resumable&name=${encodeURIComponent(objectName)}&upload_id=${id}`;
      return { status: 200, headers: { location, "x-guploader-uploadid": id } };
    }
    let bytes: Buffer;
    let contentType = headerOf(req, "content-type") ?? "application/octet-stream";
    let objectName = name;
    if (type === "multipart") {
      const parts = parseMultipart(body, contentType);
      if (!parts || parts.length !== 2) return failure(400, "Invalid multipart request", "invalid");
      const metadata = JSON.parse(parts[0]!.body.toString("utf8")) as { name?: string; contentType?: string };
      objectName ??= metadata.name ?? null;
      contentType = metadata.contentType ?? parts[1]!.contentType ?? "application/octet-stream";
      bytes = parts[1]!.body;
    } else if (type === "media") {
      bytes = body;
    } else {
      return failure(400, `Invalid upload type ${type}`, "invalid");
    }
    if (!objectName) return failure(400, "Required parameter: name", "required");
    const precondition = this.precondition(objects.get(objectName), url);
    if (precondition) return precondition;
    const hashProblem = checkSentHash(req, bytes);
    if (hashProblem) return hashProblem;
    return { status: 200, body: this.resource(bucket, this.store(bucket, objectName, bytes, contentType)) };
  }

  private uploadChunk(url: URL, req: IncomingMessage, body: Buffer): Reply {
    const session = this.sessions.get(url.searchParams.get("upload_id") ?? "");
    if (!session) return failure(404, "No such upload session", "notFound");
    if (session.done) {
      const object = this.buckets.get(session.bucket)?.get(session.name);
      return object
        ? { status: 200, body: this.resource(session.bucket, object) }
        : failure(410, "Gone", "gone");
    }
    const persisted = (): Record<string, string> =>
      session.received > 0 ? { range: `bytes=0-${session.received - 1}` } : {};
    const range = headerOf(req, "content-range") ?? "";
    const m = /^bytes (\*|(\d+)-(\d+|\*))\/(\d+|\*)$/.exec(range.trim());
    if (!m) return failure(400, `Invalid Content-Range ${JSON.stringify(range)}`, "invalid");
    const total = m[4] === "*" ? undefined : Number(m[4]);
    if (m[1] !== "*") {
      const start = Number(m[2]);
      if (start !== session.received) return { status: 308, headers: persisted() };
      const end = m[3] === "*" ? start + body.length - 1 : Number(m[3]);
      if (end - start + 1 !== body.length) {
        return failure(400, "Content-Range does not match the request's length", "invalid");
      }
      // An open end (`bytes 0-*/*`, how a client streams a whole object of unknown size in one request) makes the
      // request's body the rest of the object.
      const openEnded = m[3] === "*";
      const final = openEnded || (total !== undefined && end + 1 === total);
      if (!final && body.length % QUANTUM !== 0) {
        return failure(
          400,
          `Invalid request. The number of bytes uploaded is required to be equal or greater than ${QUANTUM}, except for the final request (it's recommended to be the exact multiple of ${QUANTUM}).`,
          "invalid",
        );
      }
      session.chunks.push(body);
      session.received += body.length;
      if (openEnded && (total === undefined || total === session.received)) return this.finish(session, req);
    }
    if (total === undefined || session.received < total) return { status: 308, headers: persisted() };
    if (session.received > total) return failure(400, "More bytes than the declared total", "invalid");
    return this.finish(session, req);
  }

  /** The session's bytes become the object, if its precondition still holds and the sent hash matches. */
  private finish(session: Session, req: IncomingMessage): Reply {
    const bytes = Buffer.concat(session.chunks);
    const objects = this.buckets.get(session.bucket);
    if (!objects) return noBucket();
    const generation = objects.get(session.name)?.generation ?? 0;
    if (session.ifGenerationMatch !== undefined && session.ifGenerationMatch !== generation) {
      this.sessions.delete(session.id);
      return conditionNotMet();
    }
    const hashProblem = checkSentHash(req, bytes);
    if (hashProblem) return hashProblem;
    session.done = true;
    session.chunks.length = 0;
    const object = this.store(session.bucket, session.name, bytes, session.contentType);
    return { status: 200, body: this.resource(session.bucket, object) };
  }

  private store(bucket: string, name: string, sent: Buffer, contentType: string): FakeObject {
    let bytes = sent;
    if (this.corruptUploads > 0 && bytes.length > 0) {
      this.corruptUploads--;
      bytes = Buffer.from(sent);
      bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff;
    }
    generationClock = Math.max(generationClock + 1, Date.now() * 1000);
    const object: FakeObject = {
      name,
      generation: generationClock,
      bytes,
      contentType,
      crc32c: crc32cBase64(bytes),
      md5Hash: createHash("md5").update(bytes).digest("base64"),
      created: new Date(),
    };
    this.objects(bucket).set(name, object);
    return object;
  }

  private resource(bucket: string, object: FakeObject): Record<string, unknown> {
    const path = `b/${encodeURIComponent(bucket)}/o/${encodeURIComponent(object.name)}`;
    return {
      kind: "storage#object",
      id: `${bucket}/${object.name}/${object.generation}`,
      selfLink: `${this.url}/storage/v1/${path}`,
      mediaLink: `${this.url}/download/storage/v1/${path}?generation=${object.generation}&alt=media`,
      name: object.name,
      bucket,
      generation: String(object.generation),
      metageneration: "1",
      contentType: object.contentType,
      storageClass: "STANDARD",
      size: String(object.bytes.length),
      md5Hash: object.md5Hash,
      crc32c: object.crc32c,
      etag: Buffer.from(String(object.generation)).toString("base64"),
      timeCreated: object.created.toISOString(),
      updated: object.created.toISOString(),
      timeStorageClassUpdated: object.created.toISOString(),
    };
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function bytesOf(name: string): Buffer {
  return Buffer.from(name, "utf8");
}

function errorBody(code: number, message: string, reason: string, extra: Record<string, string> = {}) {
  return { error: { code, message, errors: [{ message, domain: "global", reason, ...extra }] } };
}

function failure(status: number, message: string, reason: string, extra: Record<string, string> = {}): Reply {
  return { status, body: errorBody(status, message, reason, extra) };
}

function noBucket(): Reply {
  return failure(404, "The specified bucket does not exist.", "notFound");
}

function conditionNotMet(): Reply {
  return failure(412, "At least one of the pre-conditions you specified did not hold.", "conditionNotMet", {
    locationType: "header",
    location: "If-Match",
  });
}

/** An `X-Goog-Hash: crc32c=…,md5=…` the client sent that does not match the bytes: GCS refuses the object. */
function checkSentHash(req: IncomingMessage, bytes: Buffer): Reply | undefined {
  const sent = headerOf(req, "x-goog-hash");
  if (!sent) return undefined;
  for (const pair of sent.split(",")) {
    const at = pair.indexOf("=");
    const kind = pair.slice(0, at).trim();
    const value = pair.slice(at + 1).trim();
    if (kind === "crc32c" && value !== crc32cBase64(bytes)) {
      return failure(
        400,
        `Provided CRC32C "${value}" doesn't match calculated CRC32C "${crc32cBase64(bytes)}".`,
        "invalid",
      );
    }
    if (kind === "md5" && value !== createHash("md5").update(bytes).digest("base64")) {
      return failure(400, `Provided MD5 hash "${value}" doesn't match calculated MD5 hash.`, "invalid");
    }
  }
  return undefined;
}

interface Part {
  contentType: string | undefined;
  body: Buffer;
}

/** The parts of a multipart/related body (RFC 2387), as the client's simple upload sends metadata + media. */
function parseMultipart(body: Buffer, contentType: string): Part[] | undefined {
  const boundary = /boundary="?([^";]+)"?/.exec(contentType)?.[1];
  if (!boundary) return undefined;
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: Part[] = [];
  let at = body.indexOf(delimiter);
  while (at >= 0) {
    const start = at + delimiter.length;
    if (body.subarray(start, start + 2).toString() === "--") break;
    const next = body.indexOf(delimiter, start);
    if (next < 0) return undefined;
    const part = body.subarray(start, next);
    const headerEnd = part.indexOf("\r\n\r\n");
    if (headerEnd < 0) return undefined;
    const headers = part.subarray(0, headerEnd).toString("utf8");
    // The part's body ends with the CRLF that precedes the next delimiter.
    const content = part.subarray(headerEnd + 4, part.length - 2);
    parts.push({ contentType: /content-type:\s*([^\r\n]+)/i.exec(headers)?.[1]?.trim(), body: content });
    at = next;
  }
  return parts;
}

/** CRC-32C (Castagnoli) tables for slicing by 8: the fake checksums whole benchmark streams. */
const CRC32C_TABLES = (() => {
  const tables = Array.from({ length: 8 }, () => new Uint32Array(256));
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    tables[0]![n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    for (let t = 1; t < 8; t++)
      tables[t]![n] = (tables[0]![tables[t - 1]![n]! & 0xff]! ^ (tables[t - 1]![n]! >>> 8)) >>> 0;
  }
  return tables;
})();

/** CRC-32C (Castagnoli) of the bytes, big-endian, base64: how GCS writes `crc32c`. */
export function crc32cBase64(bytes: Uint8Array): string {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = CRC32C_TABLES as [
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
  ];
  let crc = 0xffffffff;
  let i = 0;
  for (const end = bytes.length - 8; i <= end; i += 8) {
    const lo =
      (crc ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24))) >>> 0;
    crc =
      t7[lo & 0xff]! ^
      t6[(lo >>> 8) & 0xff]! ^
      t5[(lo >>> 16) & 0xff]! ^
      t4[lo >>> 24]! ^
      t3[bytes[i + 4]!]! ^
      t2[bytes[i + 5]!]! ^
      t1[bytes[i + 6]!]! ^
      t0[bytes[i + 7]!]!;
  }
  for (; i < bytes.length; i++) crc = t0[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  const out = Buffer.alloc(4);
  out.writeUInt32BE((crc ^ 0xffffffff) >>> 0);
  return out.toString("base64");
}
