/**
 * Bulk loading with bounded batches and honest accounting. Batches close at a byte or document limit; a few are in
 * flight at once. A whole request answered 429 (or 502/503/504, or a reset connection) is sent again after an
 * exponential backoff; items answered 429 are sent again alone; any other item error is permanent and counted
 * with its reason. `finish()` says how many documents were lost, so the caller can fail the restore.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { CapsuleError, ErrorCode } from "../../domain/errors.js";
import { type EsClient, EsHttpError } from "./client.js";

/** A batch closes at 5 MiB or 5000 documents; two requests are in flight at once. */
const BATCH_BYTES = 5 * 1024 * 1024;
const BATCH_DOCS = 5000;
const CONCURRENCY = 2;
/** Attempts per batch, the first included; the backoff starts at 250 ms, doubled per attempt, at most 30 s. */
const RETRY = { attempts: 10, baseMs: 250, maxMs: 30_000 };

export interface BulkResult {
  readonly loaded: number;
  readonly lost: number;
  /** error type → how many items failed with it, and one example reason. */
  readonly reasons: Map<string, { count: number; example: string }>;
  /** Requests sent again after a 429 or a transient failure. */
  readonly retries: number;
}

interface Item {
  readonly action: string;
  readonly source: string;
}

const RETRYABLE_STATUS = [429, 502, 503, 504];

export class BulkLoader {
  private batch: Item[] = [];
  private batchBytes = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private failure: Error | undefined;
  private loaded = 0;
  private lost = 0;
  private retries = 0;
  private readonly reasons = new Map<string, { count: number; example: string }>();

  constructor(
    private readonly client: EsClient,
    private readonly where: string,
  ) {}

  /** Queues one document (raw JSON id, routing and source); waits when enough requests are in flight. */
  async add(
    indexJson: string,
    rawId: string,
    rawRouting: string | undefined,
    rawSource: string,
  ): Promise<void> {
    const routing = rawRouting === undefined ? "" : `,"routing":${rawRouting}`;
    const item = { action: `{"index":{"_index":${indexJson},"_id":${rawId}${routing}}}`, source: rawSource };
    this.batch.push(item);
    this.batchBytes += item.action.length + Buffer.byteLength(rawSource) + 2;
    if (this.batch.length >= BATCH_DOCS || this.batchBytes >= BATCH_BYTES) {
      await this.flush();
    }
  }

  /** Sends what is queued and waits for every request; returns the account and starts a fresh one. */
  async finish(): Promise<BulkResult> {
    await this.flush();
    await Promise.allSettled([...this.inFlight]);
    this.throwIfFailed();
    const result: BulkResult = {
      loaded: this.loaded,
      lost: this.lost,
      reasons: new Map(this.reasons),
      retries: this.retries,
    };
    this.loaded = 0;
    this.lost = 0;
    this.reasons.clear();
    return result;
  }

  private async flush(): Promise<void> {
    this.throwIfFailed();
    if (this.batch.length === 0) return;
    const items = this.batch;
    this.batch = [];
    this.batchBytes = 0;
    while (this.inFlight.size >= CONCURRENCY) {
      await Promise.race([...this.inFlight]);
      this.throwIfFailed();
    }
    const sending: Promise<void> = this.send(items).then(
      () => void this.inFlight.delete(sending),
      (error: unknown) => {
        this.inFlight.delete(sending);
        this.failure ??= error instanceof Error ? error : new Error(String(error));
      },
    );
    this.inFlight.add(sending);
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  private async send(items: Item[]): Promise<void> {
    const { attempts } = RETRY;
    let pending = items;
    for (let attempt = 1; pending.length > 0; attempt++) {
      if (attempt > 1) {
        this.retries++;
        await sleep(this.backoff(attempt - 1));
      }
      const body = pending.map((i) => `${i.action}\n${i.source}\n`).join("");
      let status: number;
      let text: string;
      try {
        ({ status, text } = await this.client.request("POST", "_bulk", {
          body,
          ndjson: true,
          allow: RETRYABLE_STATUS,
        }));
      } catch (error) {
        const transient =
          error instanceof CapsuleError && /connection was reset|no answer within/.test(error.message);
        if (transient && !(error instanceof EsHttpError) && attempt < attempts) continue;
        throw error;
      }
      if (RETRYABLE_STATUS.includes(status)) {
        if (attempt < attempts) continue;
        this.count(
          pending.length,
          `HTTP ${status}`,
          `on every attempt (${attempts}): the cluster stayed overloaded`,
        );
        return;
      }
      const answer = JSON.parse(text) as { errors?: boolean; items?: Array<Record<string, BulkItemResult>> };
      const results = answer.items ?? [];
      if (results.length !== pending.length) {
        throw new CapsuleError(
          ErrorCode.DatabaseError,
          `${this.where}: POST /_bulk answered ${results.length} items for ${pending.length} documents`,
        );
      }
      if (!answer.errors) {
        this.loaded += pending.length;
        return;
      }
      const again: Item[] = [];
      results.forEach((entry, i) => {
        const result = entry["index"] ?? Object.values(entry)[0];
        const itemStatus = result?.status ?? 0;
        if (itemStatus >= 200 && itemStatus < 300) this.loaded++;
        else if (itemStatus === 429 && attempt < attempts) again.push(pending[i]!);
        else {
          const error = result?.error;
          const type = error?.type ?? `status ${itemStatus}`;
          this.count(
            1,
            type,
            itemStatus === 429 ? `still rejected after ${attempts} attempts` : truncate(error?.reason ?? ""),
          );
        }
      });
      pending = again;
    }
  }

  private count(n: number, type: string, example: string): void {
    this.lost += n;
    const seen = this.reasons.get(type);
    this.reasons.set(type, { count: (seen?.count ?? 0) + n, example: seen?.example ?? example });
  }

  private backoff(retry: number): number {
    const { baseMs, maxMs } = RETRY;
    const ceiling = Math.min(maxMs, baseMs * 2 ** (retry - 1));
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }
}

interface BulkItemResult {
  status?: number;
  error?: { type?: string; reason?: string };
}

/** `n × type (e.g. reason); …` for a message, most frequent first, at most three. */
export function describeReasons(reasons: BulkResult["reasons"]): string {
  const sorted = [...reasons.entries()].sort((a, b) => b[1].count - a[1].count);
  const shown = sorted.slice(0, 3).map(([type, r]) => `${r.count} × ${type} (e.g. ${r.example})`);
  return shown.join("; ") + (sorted.length > 3 ? `; +${sorted.length - 3} other reasons` : "");
}

function truncate(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
