/**
 * The `es-ndjson` artifact (docs/adr/0006): one gzipped NDJSON stream, self-contained, readable with zcat and jq.
 *
 *   {"capsule":"header",…}                          format version, server, cluster, capsule version
 *   {"capsule":"index","name":…,"settings":…,"mappings":…,"aliases":…}
 *   {"_index":…,"_id":…,"_routing":…,"_source":{…}}  one line per document (`_routing` only when set)
 *   {"capsule":"index_end","name":…,"docs":N}
 *   … next index …
 *   {"capsule":"end","indices":N,"docs":N}
 *
 * Metadata lines carry `"capsule"` as their first key and document lines `"_index"`, so a reader tells them apart
 * by their first bytes. `_source` is the server's raw JSON, never re-encoded. Pure functions; no I/O.
 */
import { objectMembers, oneLine, RawJsonError, slice, type RawHit } from "./raw-json.js";

export const ES_ARTIFACT_NAME = "indices.ndjson.gz";
export const ES_ARTIFACT_FORMAT = "es-ndjson";
export const ES_FORMAT_VERSION = 1;

export type Distribution = "elasticsearch" | "opensearch";

/** Which server and cluster an export came from. */
export interface ClusterIdentity {
  readonly distribution: Distribution;
  readonly version: string;
  readonly clusterName: string;
  readonly clusterUuid: string;
}

export interface HeaderRecord {
  readonly capsule: "header";
  readonly format: typeof ES_ARTIFACT_FORMAT;
  readonly formatVersion: number;
  readonly createdAt: string;
  readonly capsuleVersion: string;
  readonly source: ClusterIdentity;
  /** How documents were read: `pit` (point in time + search_after on _shard_doc) or `scroll`. */
  readonly method: ExportMethod;
}

export type ExportMethod = "pit" | "scroll";

export interface IndexRecord {
  readonly capsule: "index";
  readonly name: string;
  /** Flat settings (`index.number_of_shards`…), minus what a new index must not carry. */
  readonly settings: Record<string, unknown>;
  readonly mappings: Record<string, unknown>;
  readonly aliases: Record<string, AliasDefinition>;
}

export interface AliasDefinition {
  readonly filter?: unknown;
  readonly index_routing?: string;
  readonly search_routing?: string;
  readonly routing?: string;
  readonly is_write_index?: boolean;
  readonly is_hidden?: boolean;
}

export interface IndexEndRecord {
  readonly capsule: "index_end";
  readonly name: string;
  readonly docs: number;
}

export interface EndRecord {
  readonly capsule: "end";
  readonly indices: number;
  readonly docs: number;
}

/** A document line, kept raw: `id`, `routing` and `source` are JSON text exactly as stored. */
export interface DocRecord {
  readonly capsule: "doc";
  readonly index: string;
  /** JSON text of the id (a JSON string, quotes included). */
  readonly rawId: string;
  readonly rawRouting?: string;
  readonly rawSource: string;
}

export type ArtifactRecord = HeaderRecord | IndexRecord | DocRecord | IndexEndRecord | EndRecord;

export class FormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FormatError";
  }
}

export function metaLine(record: HeaderRecord | IndexRecord | IndexEndRecord | EndRecord): string {
  return `${JSON.stringify(record)}\n`;
}

/** One document line from a search hit; its `_source` goes out byte for byte (line breaks become spaces). */
export function docLine(indexJson: string, hit: RawHit): string {
  const routing = hit.routing === undefined ? "" : `,"_routing":${JSON.stringify(hit.routing)}`;
  return `{"_index":${indexJson},"_id":${JSON.stringify(hit.id)}${routing},"_source":${oneLine(hit.source ?? "{}")}}\n`;
}

const DOC_PREFIX = '{"_index":';
const META_PREFIX = '{"capsule":';

/** Parses one line (without its newline). `lineNumber` is for messages. */
export function parseLine(line: string, lineNumber: number): ArtifactRecord {
  try {
    if (line.startsWith(DOC_PREFIX)) {
      const { members } = objectMembers(line);
      const index = slice(line, members.get("_index"));
      const rawId = slice(line, members.get("_id"));
      const rawSource = slice(line, members.get("_source"));
      if (index === undefined || rawId === undefined || rawSource === undefined) {
        throw new FormatError("a document line needs _index, _id and _source");
      }
      const rawRouting = slice(line, members.get("_routing"));
      return {
        capsule: "doc",
        index: JSON.parse(index) as string,
        rawId,
        rawSource,
        ...(rawRouting !== undefined ? { rawRouting } : {}),
      };
    }
    if (line.startsWith(META_PREFIX)) {
      const record = JSON.parse(line) as ArtifactRecord;
      if (!["header", "index", "index_end", "end"].includes(record.capsule)) {
        throw new FormatError(`unknown record "${record.capsule}"`);
      }
      return record;
    }
    throw new FormatError("neither a document nor a capsule record");
  } catch (error) {
    const why =
      error instanceof FormatError || error instanceof RawJsonError ? error.message : "invalid JSON";
    throw new FormatError(`line ${lineNumber}: ${why}`);
  }
}

/**
 * Settings a new index must not be created with: identity and history the server assigns (uuid, creation date,
 * version, provided name), and leftovers of a shrink/split/clone. Flat keys; a trailing "." is a prefix.
 */
const DROPPED_SETTINGS = [
  "index.uuid",
  "index.creation_date",
  "index.creation_date_string",
  "index.provided_name",
  "index.history.uuid",
  "index.version.",
  "index.routing.allocation.initial_recovery.",
  "index.resize.source.",
  "index.shrink.source.",
  "index.verified_before_close",
  "index.frozen",
  "index.search.throttled",
];

/**
 * Settings applied only after the documents are loaded: a write block (e.g. an index made read-only before a
 * shrink) would make the bulk load fail.
 */
const DEFERRED_SETTINGS = ["index.blocks."];

/** Whether a flat setting key is in `list`, where an entry ending in "." is a prefix. */
export function matchesAny(key: string, list: readonly string[]): boolean {
  return list.some((entry) => (entry.endsWith(".") ? key.startsWith(entry) : key === entry));
}

/** Flat settings as exported: the server's, minus the ones a new index must not carry. */
export function portableSettings(flat: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(flat)
      .filter(([key]) => !matchesAny(key, DROPPED_SETTINGS))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
}

/** Splits exported settings into what an index is created with and what is applied after its documents. */
export function creationSettings(settings: Record<string, unknown>): {
  create: Record<string, unknown>;
  deferred: Record<string, unknown>;
} {
  const create: Record<string, unknown> = {};
  const deferred: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(settings)) {
    if (matchesAny(key, DROPPED_SETTINGS)) continue; // an export made by hand may still carry them
    (matchesAny(key, DEFERRED_SETTINGS) ? deferred : create)[key] = value;
  }
  return { create, deferred };
}

/** Flattens nested settings (`{"index":{"number_of_shards":"1"}}` → `{"index.number_of_shards":"1"}`). */
export function flattenSettings(nested: Record<string, unknown>, prefix = ""): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(nested)) {
    const name = prefix ? `${prefix}.${key}` : key;
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      Object.assign(out, flattenSettings(value as Record<string, unknown>, name));
    } else out[name] = value;
  }
  return out;
}

/** Whether an index's mappings disable `_source`, so its documents cannot be exported. */
export function sourceDisabled(mappings: Record<string, unknown>): boolean {
  const source = mappings["_source"] as { enabled?: unknown } | undefined;
  return source?.enabled === false || source?.enabled === "false";
}
