/**
 * Elasticsearch restore (docs/adr/0006): verify the artifact's sha256 first; plan from the fingerprint (which
 * indices, under which names) and refuse, before writing anything, to overwrite an existing index unless
 * `--replace`; then stream the export once — create each index with its settings and mappings, bulk load its
 * documents (bounded batches, 429s retried with backoff, every lost document counted), apply deferred settings,
 * refresh, compare `_count` with the fingerprint, and only then add its aliases, so an alias never points at a
 * half-loaded index.
 *
 * SIGINT/SIGTERM (`signal`) stop it between two lines of the export: the bulk request in flight finishes, an index
 * capsule created and had not finished is deleted (one it had replaced under --replace is named: its old contents
 * are already gone), and an InterruptedError says which indices are restored completely and what is left.
 */
import { randomBytes } from "node:crypto";
import type { Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { CapsuleError, ErrorCode, FieldError, messageOf } from "../../domain/errors.js";
import { failpoint } from "../../util/failpoint.js";
import { interruptionOf, throwIfInterrupted } from "../../util/interruption.js";
import type { ArtifactSource } from "../../domain/artifact.js";
import { artifactOf, interruptedWith, throwIfUntouched } from "../restore-guards.js";
import { BulkLoader, describeReasons } from "./bulk.js";
import { EsClient, EsHttpError, type ServerInfo } from "./client.js";
import { describeConnection, type EsConnection } from "./connection.js";
import type { EsFingerprint } from "./fingerprint.js";
import {
  type ArtifactRecord,
  creationSettings,
  type Distribution,
  ES_ARTIFACT_FORMAT,
  ES_FORMAT_VERSION,
  FormatError,
  type HeaderRecord,
  matchesAny,
  type IndexRecord,
  parseLine,
} from "./format.js";
import {
  invalidIndexName,
  parsePatterns,
  type Rename,
  renamed,
  selectIndices,
  unmatchedNames,
} from "./indices.js";

export interface EsRestoreOptions {
  /** `--indices`: which of the backup's indices to restore. @default all of them */
  readonly indices?: string;
  /** Delete and recreate indices that exist. @default false */
  readonly replace?: boolean;
  readonly rename?: Rename;
  readonly onPhase?: (phase: string) => void;
  readonly signal?: AbortSignal;
}

export interface RestoredIndex {
  readonly from: string;
  readonly to: string;
  readonly docs: number;
  readonly aliases: string[];
  readonly replaced: boolean;
}

export interface EsRestoreOutcome {
  readonly target: string;
  readonly indices: RestoredIndex[];
  readonly docs: number;
  /** Aliases not restored because their index was renamed (they would point the live alias at the copy). */
  readonly skippedAliases: Record<string, string[]>;
  /** Bulk requests sent again after a 429 or a transient failure. */
  readonly retries: number;
}

interface Planned {
  readonly from: string;
  readonly to: string;
  readonly expected: number;
  readonly exists: boolean;
}

/**
 * Settings one distribution knows and the other refuses at index creation ("unknown setting"). Dropped only when
 * the backup comes from the other distribution. A trailing "." is a prefix.
 */
const FOREIGN_SETTINGS: Record<Distribution, string[]> = {
  // restoring into Elasticsearch what OpenSearch wrote
  elasticsearch: ["index.plugins.", "index.opendistro.", "index.replication.", "index.knn", "index.knn."],
  // restoring into OpenSearch what Elasticsearch wrote
  opensearch: ["index.routing.allocation.include._tier_preference", "index.lifecycle.", "index.mode"],
};

export async function restoreElasticsearch(
  conn: EsConnection,
  source: ArtifactSource,
  options: EsRestoreOptions = {},
): Promise<EsRestoreOutcome> {
  const phase = options.onPhase ?? (() => undefined);
  const where = describeConnection(conn);
  const fingerprint = source.statefile.fingerprint as EsFingerprint | undefined;
  artifactOf(source);
  if (!fingerprint?.indices) {
    throw new CapsuleError(
      ErrorCode.NotRestorable,
      `${source.backupId} has no index list in its fingerprint: not an es-ndjson backup capsule can plan`,
    );
  }

  // Nothing reaches the cluster before the whole artifact is known good.
  phase("verifying checksum");
  await source.verify();
  throwIfUntouched(options.signal, where);

  const client = new EsClient(conn);
  try {
    phase("checking the target");
    const info = await client.info();
    const plan = await planRestore(client, where, fingerprint, options);
    const existing = plan.filter((p) => p.exists);
    if (existing.length > 0 && !options.replace) {
      throw new FieldError(
        ErrorCode.Refused,
        "replace",
        `${where}: ${plural(existing.length, "index", "indices")} already ${existing.length === 1 ? "exists" : "exist"}: ` +
          `${existing.map((p) => p.to).join(", ")}; pass {replace} to delete and recreate, or restore under new ` +
          `names with {renamePattern}/{renameReplacement}`,
      );
    }
    const input = await source.open();
    return await new Restorer(client, where, info, plan, options, phase).run(input);
  } finally {
    client.close();
  }
}

async function planRestore(
  client: EsClient,
  where: string,
  fingerprint: EsFingerprint,
  options: EsRestoreOptions,
): Promise<Planned[]> {
  const inBackup = Object.keys(fingerprint.indices).map((name) => ({ name }));
  const patterns = options.indices === undefined ? undefined : parsePatterns(options.indices);
  const missing = patterns ? unmatchedNames(inBackup, patterns) : [];
  if (missing.length > 0) {
    throw new CapsuleError(
      ErrorCode.NotFound,
      `not in this backup: ${missing.join(", ")} (it holds ${inBackup.map((i) => i.name).join(", ") || "no index"})`,
    );
  }
  const selected = patterns ? selectIndices(inBackup, patterns) : inBackup;
  if (selected.length === 0) {
    throw new FieldError(
      ErrorCode.Refused,
      "indices",
      `{indices} ${options.indices ?? ""} selects no index of this backup (it holds ${inBackup.map((i) => i.name).join(", ") || "none"})`,
    );
  }
  const targets = new Map<string, string>();
  const plan: Planned[] = [];
  for (const { name } of selected) {
    const to = renamed(name, options.rename);
    const invalid = invalidIndexName(to);
    if (invalid)
      throw new CapsuleError(ErrorCode.Refused, `cannot restore ${name} as "${to}": the name ${invalid}`);
    const clash = targets.get(to);
    if (clash)
      throw new CapsuleError(ErrorCode.Refused, `${clash} and ${name} would both be restored as ${to}`);
    targets.set(to, name);
    const head = await client.request("HEAD", encodeURIComponent(to), { allow: [404] });
    const exists = head.status === 200;
    if (exists) {
      // HEAD answers 200 for an alias too; --replace deletes indices, never what an alias points at.
      const concrete = Object.keys(await client.json<Record<string, unknown>>("GET", encodeURIComponent(to)));
      if (!concrete.includes(to)) {
        throw new FieldError(
          ErrorCode.Refused,
          "renamePattern",
          `${where}: "${to}" is an alias (of ${concrete.join(", ")}); restore ${name} under another name with ` +
            `{renamePattern}/{renameReplacement}`,
        );
      }
    }
    plan.push({ from: name, to, expected: fingerprint.indices[name]?.docs ?? 0, exists });
  }
  return plan;
}

class Restorer {
  private readonly byName: Map<string, Planned>;
  private readonly loader: BulkLoader;
  private readonly restored: RestoredIndex[] = [];
  private readonly skippedAliases: Record<string, string[]> = {};
  private header: HeaderRecord | undefined;
  private current: { plan: Planned; record: IndexRecord; toJson: string; created: boolean } | undefined;
  private ended = false;
  private retries = 0;

  constructor(
    private readonly client: EsClient,
    private readonly where: string,
    private readonly info: ServerInfo,
    plan: Planned[],
    private readonly options: EsRestoreOptions,
    private readonly phase: (phase: string) => void,
  ) {
    this.byName = new Map(plan.map((p) => [p.from, p]));
    this.loader = new BulkLoader(client, where);
  }

  async run(input: Readable): Promise<EsRestoreOutcome> {
    const gunzip = createGunzip();
    input.on("error", (error) => gunzip.destroy(error));
    input.pipe(gunzip);
    let lineNumber = 0;
    try {
      for await (const line of readLines(gunzip)) {
        throwIfInterrupted(this.options.signal);
        lineNumber++;
        if (line.length === 0) continue;
        await this.handle(parseLine(line, lineNumber), lineNumber);
      }
      throwIfInterrupted(this.options.signal);
    } catch (error) {
      const { signal } = this.options;
      if (interruptionOf(signal))
        throw interruptedWith(signal, await this.interruptedState(), error) ?? error;
      throw this.describeFailure(error);
    } finally {
      input.destroy();
    }
    if (!this.ended) throw this.describeFailure(new FormatError("the export ends before its end record"));
    const missing = [...this.byName.values()].filter((p) => !this.restored.some((r) => r.from === p.from));
    if (missing.length > 0) {
      throw new CapsuleError(
        ErrorCode.FingerprintMismatch,
        `the export holds no data for ${missing.map((p) => p.from).join(", ")}, which its fingerprint lists`,
      );
    }
    return {
      target: this.where,
      indices: this.restored,
      docs: this.restored.reduce((sum, r) => sum + r.docs, 0),
      skippedAliases: this.skippedAliases,
      retries: this.retries,
    };
  }

  private async handle(record: ArtifactRecord, lineNumber: number): Promise<void> {
    if (!this.header && record.capsule !== "header") {
      throw new FormatError(`line ${lineNumber}: the export does not start with its header`);
    }
    switch (record.capsule) {
      case "header":
        if (record.format !== ES_ARTIFACT_FORMAT || record.formatVersion > ES_FORMAT_VERSION) {
          throw new CapsuleError(
            ErrorCode.NotRestorable,
            `the export is ${record.format} version ${record.formatVersion}; this capsule reads ` +
              `${ES_ARTIFACT_FORMAT} up to version ${ES_FORMAT_VERSION}: use a newer capsule`,
          );
        }
        this.header = record;
        return;
      case "index": {
        const plan = this.byName.get(record.name);
        if (!plan) return;
        this.current = { plan, record, toJson: JSON.stringify(plan.to), created: false };
        this.phase(`restoring ${record.name}${plan.to === record.name ? "" : ` as ${plan.to}`}`);
        await this.createIndex(plan, record);
        this.current.created = true;
        await failpoint("es-restore-index-created", this.options.signal);
        return;
      }
      case "doc": {
        const current = this.current;
        if (current?.record.name !== record.index) return;
        await this.loader.add(current.toJson, record.rawId, record.rawRouting, record.rawSource);
        return;
      }
      case "index_end":
        if (this.current?.record.name === record.name) await this.finishIndex(record.docs);
        this.current = undefined;
        return;
      case "end":
        this.ended = true;
        return;
    }
  }

  private async createIndex(plan: Planned, record: IndexRecord): Promise<void> {
    const { create } = creationSettings(record.settings);
    const settings = this.withoutForeignSettings(create);
    const body = { settings, mappings: record.mappings };
    const path = encodeURIComponent(plan.to);
    if (plan.exists) {
      // Prove the target accepts these settings and mappings before the old index is deleted.
      const probe = `${plan.to.slice(0, 200)}-capsule-probe-${randomBytes(4).toString("hex")}`;
      await this.client.request("PUT", encodeURIComponent(probe), { body });
      await this.client.request("DELETE", encodeURIComponent(probe), { allow: [404] });
      this.phase(`deleting the existing ${plan.to}`);
      await this.client.request("DELETE", path, { allow: [404] });
    }
    try {
      await this.client.request("PUT", path, { body });
    } catch (error) {
      if (error instanceof EsHttpError && error.type === "resource_already_exists_exception") {
        throw new CapsuleError(
          ErrorCode.Refused,
          `${this.where}: index ${plan.to} was created by someone else while capsule restored; nothing was written to it`,
        );
      }
      throw error;
    }
  }

  private async finishIndex(exportedDocs: number): Promise<void> {
    const current = this.current!;
    const { plan, record } = current;
    const result = await this.loader.finish();
    this.retries += result.retries;
    if (result.lost > 0) {
      throw new CapsuleError(
        ErrorCode.DatabaseError,
        `${this.where}: index ${plan.to}: ${result.lost} of ${result.lost + result.loaded} documents were ` +
          `rejected: ${describeReasons(result.reasons)}`,
      );
    }
    const path = encodeURIComponent(plan.to);
    const { deferred } = creationSettings(record.settings);
    if (Object.keys(deferred).length > 0) {
      await this.client.request("PUT", `${path}/_settings`, { body: this.withoutForeignSettings(deferred) });
    }
    this.phase(`checking ${plan.to}`);
    await this.client.request("POST", `${path}/_refresh`);
    const { count } = await this.client.json<{ count: number }>("GET", `${path}/_count`);
    const problems = [
      exportedDocs !== plan.expected
        ? `the export holds ${exportedDocs} documents, its fingerprint ${plan.expected}`
        : undefined,
      result.loaded !== exportedDocs
        ? `${result.loaded} loaded, the export holds ${exportedDocs}`
        : undefined,
      count !== plan.expected ? `_count is ${count}, the backup has ${plan.expected}` : undefined,
    ].filter((p): p is string => p !== undefined);
    if (problems.length > 0) {
      throw new CapsuleError(
        ErrorCode.FingerprintMismatch,
        `${this.where}: index ${plan.to} does not match the backup: ${problems.join("; ")}`,
      );
    }

    const aliases = Object.entries(record.aliases);
    const added: string[] = [];
    if (aliases.length > 0 && plan.to !== plan.from) {
      this.skippedAliases[plan.to] = aliases.map(([name]) => name);
    } else if (aliases.length > 0) {
      await this.client.request("POST", "_aliases", {
        body: {
          actions: aliases.map(([alias, definition]) => ({ add: { index: plan.to, alias, ...definition } })),
        },
      });
      added.push(...aliases.map(([name]) => name));
    }
    this.restored.push({ from: plan.from, to: plan.to, docs: count, aliases: added, replaced: plan.exists });
  }

  private withoutForeignSettings(settings: Record<string, unknown>): Record<string, unknown> {
    if (!this.header || this.header.source.distribution === this.info.distribution) return settings;
    const foreign = FOREIGN_SETTINGS[this.info.distribution];
    return Object.fromEntries(Object.entries(settings).filter(([key]) => !matchesAny(key, foreign)));
  }

  /** Deletes the index it had not finished (unless it replaced one) and says what the target holds now. */
  private async interruptedState(): Promise<string> {
    const done = this.restored.map((r) => r.to);
    const partial = this.current?.created ? this.current.plan : undefined;
    let left = "";
    if (partial && !partial.exists) {
      const removed = await this.client
        .request("DELETE", encodeURIComponent(partial.to), { allow: [404] })
        .then(
          () => true,
          () => false,
        );
      left = removed
        ? `; the unfinished ${partial.to} was deleted`
        : `; ${partial.to} is incomplete and could not be deleted: delete it, or restore again with --replace`;
    } else if (partial) {
      left = `; ${partial.to} is incomplete (--replace had deleted its old contents): restore again with --replace`;
    }
    const whole =
      done.length > 0 ? `restored completely: ${done.join(", ")}` : "no index was restored completely";
    return `: ${this.where}: ${whole}${left}`;
  }

  /** The error, plus what state the target was left in. */
  private describeFailure(error: unknown): Error {
    const done = this.restored.map((r) => r.to);
    const partial = this.current?.created ? this.current.plan.to : undefined;
    if (!partial && done.length === 0) {
      return error instanceof FormatError
        ? new CapsuleError(ErrorCode.NotRestorable, `the export is damaged: ${error.message}`)
        : (error as Error);
    }
    const base = error instanceof FormatError ? `the export is damaged: ${error.message}` : messageOf(error);
    const state =
      (done.length > 0 ? `; restored completely: ${done.join(", ")}` : "") +
      (partial ? `; ${partial} is incomplete: delete it, or restore again with --replace` : "");
    return new CapsuleError(
      error instanceof CapsuleError ? error.code : ErrorCode.DatabaseError,
      base + state,
      {
        cause: error,
      },
    );
  }
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Lines of a byte stream, decoded whole (so a multi-byte character split across chunks stays intact). */
export async function* readLines(stream: AsyncIterable<Buffer>): AsyncGenerator<string> {
  let parts: Buffer[] = [];
  for await (const chunk of stream) {
    let start = 0;
    let newline = chunk.indexOf(0x0a, start);
    while (newline >= 0) {
      if (parts.length > 0) {
        parts.push(chunk.subarray(start, newline));
        yield Buffer.concat(parts).toString("utf8");
        parts = [];
      } else yield chunk.toString("utf8", start, newline);
      start = newline + 1;
      newline = chunk.indexOf(0x0a, start);
    }
    if (start < chunk.length) parts.push(chunk.subarray(start));
  }
  if (parts.length > 0) yield Buffer.concat(parts).toString("utf8");
}
