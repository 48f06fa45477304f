/**
 * Elasticsearch backup: a self-contained logical export (docs/adr/0006). Per selected index its settings, mappings
 * and aliases, then its documents read through a point in time + `search_after` on `_shard_doc` (Elasticsearch
 * ≥ 7.12) or a scroll (older servers, OpenSearch), as one gzipped NDJSON stream straight into the store — pulled
 * page by page as the upload drains, so memory stays flat whatever the cluster holds. Each index's documents are
 * counted in the same point in time before they are read, and the export fails if it wrote a different number.
 * Every point in time and scroll is closed, on success and on failure.
 */
import { Readable } from "node:stream";
import { pipeline } from "node:stream";
import { constants as zlibConstants, createGzip } from "node:zlib";
import { CapsuleError, ErrorCode } from "../../domain/errors.js";
import type { ArtifactSink, UploadedArtifact } from "../../domain/artifact.js";
import type { EngineBackupResult, EngineContext } from "../engine.js";
import { buildInfo } from "../../version.js";
import { EsClient, type ServerInfo } from "./client.js";
import { describeConnection, portOf, type EsConnection } from "./connection.js";
import type { EsFingerprint } from "./fingerprint.js";
import {
  docLine,
  ES_ARTIFACT_FORMAT,
  ES_ARTIFACT_NAME,
  ES_FORMAT_VERSION,
  type ExportMethod,
  flattenSettings,
  type HeaderRecord,
  type IndexRecord,
  metaLine,
  portableSettings,
  sourceDisabled,
} from "./format.js";
import { parsePatterns, selectIndices, unmatchedNames } from "./indices.js";
import { searchPage, type RawHit } from "./raw-json.js";

/** Documents per search request; a page whose answer is larger than 16 MiB halves the next one (PIT only). */
const PAGE_SIZE = 1000;
const MAX_PAGE_BYTES = 16 * 1024 * 1024;
/** How long the server keeps the point in time or scroll between two requests. */
const KEEP_ALIVE = "5m";

interface CatIndex {
  readonly index: string;
  readonly status?: string;
  readonly "pri.store.size"?: string | null;
}

const MIN_PAGE = 10;

/** PIT with `_shard_doc` needs Elasticsearch 7.12+; OpenSearch's PIT is a different API (2.4+), so it scrolls. */
export function exportMethodFor(info: ServerInfo): ExportMethod {
  if (info.distribution !== "elasticsearch") return "scroll";
  const [major = 0, minor = 0] = info.version.split(".").map((n) => Number.parseInt(n, 10));
  return major > 7 || (major === 7 && minor >= 12) ? "pit" : "scroll";
}

/** `indices`: `--indices`, names and patterns, comma-separated; unset, all but system and hidden indices. */
export async function backupElasticsearch(
  conn: EsConnection,
  sink: ArtifactSink,
  options: Pick<EngineContext, "onPhase" | "signal"> & { readonly indices?: string },
): Promise<EngineBackupResult> {
  const phase = options.onPhase;
  const where = describeConnection(conn);
  const patterns = parsePatterns(options.indices);
  const client = new EsClient(conn, { signal: options.signal });
  const cursors = new OpenCursors(client);
  try {
    phase("connecting");
    const info = await client.info();
    const effective = exportMethodFor(info);

    phase("listing indices");
    const listing = await client.json<CatIndex[]>("GET", "_cat/indices", {
      query: { format: "json", h: "index,status,pri.store.size", bytes: "b", expand_wildcards: "all" },
    });
    const candidates = selectIndices(
      listing.map((i) => ({ ...i, name: i.index })),
      patterns,
    );
    const missing = unmatchedNames(
      listing.map((i) => ({ name: i.index })),
      patterns,
    );
    if (missing.length > 0) {
      throw new CapsuleError(ErrorCode.NotFound, `${where}: no index named ${missing.join(", ")}`);
    }
    const skipped: Record<string, string> = {};
    const open = candidates.filter((i) => {
      if (i.status === "close") skipped[i.name] = "closed";
      return i.status !== "close";
    });
    const sizeBytes = open.reduce((sum, i) => sum + (Number(i["pri.store.size"] ?? 0) || 0), 0);

    const header: HeaderRecord = {
      capsule: "header",
      format: ES_ARTIFACT_FORMAT,
      formatVersion: ES_FORMAT_VERSION,
      createdAt: new Date().toISOString(),
      capsuleVersion: buildInfo.version,
      source: {
        distribution: info.distribution,
        version: info.version,
        clusterName: info.clusterName,
        clusterUuid: info.clusterUuid,
      },
      method: effective,
    };
    const counts: Record<string, { docs: number }> = {};
    const exported: string[] = [];
    const exporter = new Exporter(client, cursors, where);

    async function* lines(): AsyncGenerator<Buffer> {
      yield Buffer.from(metaLine(header));
      let total = 0;
      for (const [n, candidate] of open.entries()) {
        const { record: meta, hidden } = await exporter.indexRecord(candidate.name);
        // `_cat/indices` does not say which indices are hidden; their settings do.
        if (hidden && selectIndices([{ name: candidate.name, hidden }], patterns).length === 0) continue;
        if (sourceDisabled(meta.mappings)) {
          throw new CapsuleError(
            ErrorCode.Refused,
            `${where}: index ${candidate.name} has _source disabled, so its documents cannot be exported; ` +
              `leave it out with --indices '*,-${candidate.name}'`,
          );
        }
        phase(`exporting ${candidate.name} (${n + 1}/${open.length})`);
        yield Buffer.from(metaLine(meta));
        let docs = 0;
        const reader = effective === "pit" ? exporter.pit(candidate.name) : exporter.scroll(candidate.name);
        for await (const chunk of reader) {
          docs += chunk.docs;
          yield chunk.bytes;
        }
        counts[candidate.name] = { docs };
        exported.push(candidate.name);
        total += docs;
        yield Buffer.from(metaLine({ capsule: "index_end", name: candidate.name, docs }));
      }
      yield Buffer.from(metaLine({ capsule: "end", indices: exported.length, docs: total }));
    }

    const source = Readable.from(lines(), { objectMode: false, highWaterMark: 1 });
    const gzip = createGzip({ level: zlibConstants.Z_DEFAULT_COMPRESSION });
    let cause: Error | undefined;
    source.on("error", (error) => (cause ??= error));
    const compressed = pipeline(source, gzip, (error) => {
      if (error) cause ??= error;
    });
    let uploaded: UploadedArtifact;
    try {
      uploaded = await sink.uploadArtifact(ES_ARTIFACT_NAME, compressed, {
        ...(sizeBytes > 0 ? { sizeHint: sizeBytes } : {}),
      });
    } catch (error) {
      // Prefer the server's account (or the count check's) over the upload's "stream destroyed".
      throw cause ?? error;
    }
    if (cause) throw cause;

    const docs = Object.values(counts).reduce((sum, c) => sum + c.docs, 0);
    return {
      artifact: {
        name: ES_ARTIFACT_NAME,
        format: ES_ARTIFACT_FORMAT,
        formatVersion: String(ES_FORMAT_VERSION),
        compression: "gzip",
        ...uploaded,
      },
      fingerprint: {
        distribution: info.distribution,
        serverVersion: info.version,
        clusterName: info.clusterName,
        clusterUuid: info.clusterUuid,
        method: effective,
        indices: counts,
        docs,
        ...(Object.keys(skipped).length > 0 ? { skipped } : {}),
      } satisfies EsFingerprint,
      source: {
        host: conn.url.hostname,
        port: portOf(conn),
        indices: exported,
        serverVersion: `${info.distribution} ${info.version}`,
        sizeBytes,
      },
      tool: { exportMethod: effective, gzipLevel: "6" },
    };
  } finally {
    await cursors.closeAll();
    client.close();
  }
}

/**
 * Every point in time and scroll opened by one backup, so that whatever happens — a failed page, an interrupted
 * run, a stream destroyed mid-await — the server's search contexts are released before the backup returns.
 */
class OpenCursors {
  private readonly open = { pit: new Set<string>(), scroll: new Set<string>() };
  private closed = false;

  constructor(private readonly client: EsClient) {}

  /** Registers a cursor; after closeAll, a late one is closed at once and the read stops. */
  async add(kind: "pit" | "scroll", id: string): Promise<void> {
    this.open[kind].add(id);
    if (this.closed) {
      await this.close(kind, id);
      throw new CapsuleError(ErrorCode.Refused, "the backup was stopped");
    }
  }

  /** The server may hand out a new id with each page; the newest one is what must be closed. */
  replace(kind: "pit" | "scroll", old: string, next: string | undefined): string {
    if (!next || next === old) return old;
    this.open[kind].delete(old);
    this.open[kind].add(next);
    return next;
  }

  async close(kind: "pit" | "scroll", id: string): Promise<void> {
    if (!this.open[kind].delete(id)) return;
    // 404 means the server already let it go (expired); that is what closing wants. Before 8.8, closing an
    // already-closed PIT answered 404 too.
    await (kind === "pit"
      ? this.client.request("DELETE", "_pit", { body: { id }, allow: [404] })
      : this.client.request("DELETE", "_search/scroll", { body: { scroll_id: [id] }, allow: [404] }));
  }

  async closeAll(): Promise<void> {
    this.closed = true;
    const all = [
      ...[...this.open.pit].map((id) => ["pit", id] as const),
      ...[...this.open.scroll].map((id) => ["scroll", id] as const),
    ];
    // Best effort: a cluster that just failed may refuse this too; keep_alive bounds the leak then.
    await Promise.allSettled(all.map(([kind, id]) => this.close(kind, id)));
  }
}

interface Chunk {
  readonly docs: number;
  readonly bytes: Buffer;
}

class Exporter {
  constructor(
    private readonly client: EsClient,
    private readonly cursors: OpenCursors,
    private readonly where: string,
  ) {}

  /** The index's record, and whether it is hidden (`index.hidden: true`). */
  async indexRecord(name: string): Promise<{ record: IndexRecord; hidden: boolean }> {
    const body = await this.client.json<
      Record<
        string,
        { settings?: Record<string, unknown>; mappings?: Record<string, unknown>; aliases?: object }
      >
    >("GET", encodeURIComponent(name), { query: { flat_settings: true } });
    const meta = body[name] ?? Object.values(body)[0];
    if (!meta)
      throw new CapsuleError(ErrorCode.DatabaseError, `${this.where}: GET /${name} returned no index`);
    const mappings = meta.mappings ?? {};
    const flat = flattenSettings(meta.settings ?? {});
    const hidden = String(flat["index.hidden"]) === "true";
    return {
      record: {
        capsule: "index",
        name,
        settings: portableSettings(flat),
        mappings,
        aliases: (meta.aliases ?? {}) as IndexRecord["aliases"],
      },
      hidden,
    };
  }

  /** Documents through a point in time, sorted by `_shard_doc` (the cheapest total order), with search_after. */
  async *pit(index: string): AsyncGenerator<Chunk> {
    const keepAlive = KEEP_ALIVE;
    const opened = await this.client.json<{ id: string }>("POST", `${encodeURIComponent(index)}/_pit`, {
      query: { keep_alive: keepAlive },
    });
    let pitId = opened.id;
    await this.cursors.add("pit", pitId);
    try {
      // The count, in the same point in time the documents are read from: exact, and the export must match it.
      const counted = searchPage(
        (
          await this.client.request("POST", "_search", {
            body: { size: 0, track_total_hits: true, pit: { id: pitId, keep_alive: keepAlive } },
          })
        ).text,
      );
      pitId = this.cursors.replace("pit", pitId, counted.pitId);
      const expected = counted.total?.value ?? 0;

      let size = PAGE_SIZE;
      let after: string | undefined;
      let exported = 0;
      const indexJson = JSON.stringify(index);
      for (;;) {
        const body =
          `{"size":${size},"pit":${JSON.stringify({ id: pitId, keep_alive: keepAlive })},` +
          `"sort":[{"_shard_doc":"asc"}],"track_total_hits":false` +
          (after ? `,"search_after":${after}` : "") +
          "}";
        const response = await this.client.request("POST", "_search", { body });
        const page = searchPage(response.text);
        pitId = this.cursors.replace("pit", pitId, page.pitId);
        if (page.hits.length === 0) break;
        exported += page.hits.length;
        yield { docs: page.hits.length, bytes: this.lines(index, indexJson, page.hits) };
        after = page.hits[page.hits.length - 1]!.sort;
        if (!after) throw this.protocol(index, "a hit without sort values");
        // Keep each answer bounded: big documents make smaller pages.
        if (response.text.length > MAX_PAGE_BYTES) size = Math.max(MIN_PAGE, Math.floor(size / 2));
        else if (response.text.length < MAX_PAGE_BYTES / 4 && size < PAGE_SIZE) {
          size = Math.min(PAGE_SIZE, size * 2);
        }
      }
      this.assertCount(index, expected, exported);
    } finally {
      await this.cursors.close("pit", pitId);
    }
  }

  /** Documents through a scroll sorted by `_doc`; its total is exact and describes the scroll's own snapshot. */
  async *scroll(index: string): AsyncGenerator<Chunk> {
    const keepAlive = KEEP_ALIVE;
    const first = await this.client.request("POST", `${encodeURIComponent(index)}/_search`, {
      query: { scroll: keepAlive },
      body: { size: PAGE_SIZE, sort: ["_doc"], track_total_hits: true },
    });
    let page = searchPage(first.text);
    if (!page.scrollId) throw this.protocol(index, "a scroll answer without _scroll_id");
    let scrollId = page.scrollId;
    await this.cursors.add("scroll", scrollId);
    try {
      if (!page.total || page.total.relation !== "eq") {
        throw this.protocol(index, "a scroll answer without an exact hits.total");
      }
      const expected = page.total.value;
      let exported = 0;
      const indexJson = JSON.stringify(index);
      while (page.hits.length > 0) {
        exported += page.hits.length;
        yield { docs: page.hits.length, bytes: this.lines(index, indexJson, page.hits) };
        const next = await this.client.request("POST", "_search/scroll", {
          body: { scroll: keepAlive, scroll_id: scrollId },
        });
        page = searchPage(next.text);
        scrollId = this.cursors.replace("scroll", scrollId, page.scrollId);
      }
      this.assertCount(index, expected, exported);
    } finally {
      await this.cursors.close("scroll", scrollId);
    }
  }

  private lines(index: string, indexJson: string, hits: RawHit[]): Buffer {
    let text = "";
    for (const hit of hits) {
      if (hit.source === undefined) {
        throw new CapsuleError(
          ErrorCode.Refused,
          `${this.where}: document ${hit.id} of index ${index} has no _source: it cannot be exported`,
        );
      }
      text += docLine(indexJson, hit);
    }
    return Buffer.from(text);
  }

  private assertCount(index: string, expected: number, exported: number): void {
    if (expected !== exported) {
      throw new CapsuleError(
        ErrorCode.FingerprintMismatch,
        `${this.where}: index ${index}: exported ${exported} documents, but the same point in time counts ${expected}`,
      );
    }
  }

  private protocol(index: string, what: string): CapsuleError {
    return new CapsuleError(
      ErrorCode.DatabaseError,
      `${this.where}: index ${index}: the server sent ${what}`,
    );
  }
}
