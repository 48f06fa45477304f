/**
 * Serves a recovering PostgreSQL the WAL in the bucket (docs/adr/0021). Its `restore_command` is a small script that
 * drops a `want.<file>` note into the staging directory and waits until capsule has put `<file>` there (then copies
 * it to `%p`) or `<file>.none` (the bucket has no such file: PostgreSQL tries the next timeline, or ends recovery).
 *
 * Bounded prefetch, not all of it: when PostgreSQL asks for segment N, the next few segments of the listing are
 * fetched while it replays N, so replay rarely waits for the store, yet the staging directory never holds more than
 * PREFETCH_AHEAD + 1 segments — a week of WAL is not copied to the restore's volume twice. Segments before the one
 * asked for are deleted: PostgreSQL asks in order and has already copied them. The first segments replay needs (the
 * base backup's start) are fetched as soon as the stager starts, while the base backup is still being extracted.
 */
import { chmod, chown, readdir, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import {
  parseHistoryFileName,
  parseWalFileName,
  type WalListing,
  type WalSegmentObject,
  type WalSource,
} from "../../domain/wal.js";

/** Segments fetched ahead of the one replaying: 4 × 16 MiB on disk. */
const PREFETCH_AHEAD = 4;
/**
 * Fetches in flight at once: one GET waits on the store while the other's segment is decompressed, which keeps replay
 * fed; more would only share the same two cores and the same link.
 */
const FETCHES_AT_ONCE = 2;
/** How often the staging directory is read for notes: a fetch that was not prefetched waits this long at most. */
const POLL_MS = 20;

/** `sh` script PostgreSQL runs as `restore_command '<script> %f %p'`. */
const RESTORE_SCRIPT = `#!/bin/sh
# capsule point-in-time restore: ask capsule for WAL file $1 and copy it to $2 once it is staged.
# A prefetched file is copied at once; the note still tells capsule how far replay is, to fetch further ahead.
dir=$(dirname "$0")
: > "$dir/want.$1"
while [ -d "$dir" ]; do
  if [ -f "$dir/$1" ]; then exec cp "$dir/$1" "$2"; fi
  if [ -f "$dir/$1.none" ]; then rm -f "$dir/$1.none"; exit 1; fi
  sleep 0.02
done
exit 1
`;

export interface WalStager {
  /** The `restore_command` value. */
  readonly restoreCommand: string;
  /** The first failure fetching from the store, if any (replay then waits; the restore fails with it). */
  failure(): Error | undefined;
  stop(): Promise<void>;
}

export async function startWalStager(options: {
  dir: string;
  wal: WalSource;
  listing: WalListing;
  segmentSize: number;
  /** The segment replay starts from (the base backup's start), prefetched at once. */
  startsAt: { timeline: number; segno: number };
  owner: { uid: number; gid: number } | undefined;
}): Promise<WalStager> {
  const { dir, wal, listing, segmentSize, owner } = options;
  const script = path.join(dir, "restore-wal.sh");
  await writeFile(script, RESTORE_SCRIPT);
  await chmod(script, 0o755);
  if (owner) await chown(dir, owner.uid, owner.gid);

  // The complete segment wins over a partial of the same name (a listing may hold both for a moment).
  const byName = new Map<string, WalSegmentObject>();
  for (const segment of listing.segments) {
    const known = byName.get(segment.name);
    if (!known || (known.partial && !segment.partial)) byName.set(segment.name, segment);
  }
  const history = new Set(listing.historyTimelines);
  const fetched = new Map<string, Promise<void>>();
  let failure: Error | undefined;
  let stopped = false;

  const place = async (name: string, bytes: Buffer | string): Promise<void> => {
    // Written beside, renamed into place: the script never copies half a segment.
    const temp = path.join(dir, `.${name}.part`);
    await writeFile(temp, bytes);
    await rename(temp, path.join(dir, name));
  };
  const stage = (segment: WalSegmentObject): Promise<void> => {
    let pending = fetched.get(segment.name);
    if (!pending) {
      pending = wal.fetchSegment(segment, segmentSize).then((bytes) => place(segment.name, bytes));
      pending.catch((error: unknown) => (failure ??= error as Error));
      fetched.set(segment.name, pending);
    }
    return pending;
  };
  const answer = async (name: string): Promise<void> => {
    const timeline = parseHistoryFileName(name);
    if (timeline !== undefined) {
      const content = history.has(timeline) ? await wal.fetchHistory(timeline) : undefined;
      return content ? place(name, content) : place(`${name}.none`, "");
    }
    const segment = byName.get(name);
    const parsed = parseWalFileName(name, segmentSize);
    if (!segment || !parsed) return place(`${name}.none`, "");
    for (const [stagedName] of fetched) {
      const staged = parseWalFileName(stagedName, segmentSize);
      if (staged && staged.segno < parsed.segno) {
        fetched.delete(stagedName);
        await rm(path.join(dir, stagedName), { force: true });
      }
    }
    const first = stage(segment);
    prefetch(segmentsFrom(parsed.timeline, parsed.segno + 1, PREFETCH_AHEAD));
    await first;
  };
  const segmentsFrom = (timeline: number, segno: number, count: number): WalSegmentObject[] =>
    listing.segments
      .filter((s) => s.timeline === timeline && s.segno >= segno)
      .map((s) => byName.get(s.name)!)
      .filter((s, i, all) => all.indexOf(s) === i)
      .slice(0, count);
  /** In order, FETCHES_AT_ONCE at a time: bounded memory and a fair share of the store. */
  const prefetch = (segments: WalSegmentObject[]): void => {
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < segments.length && !stopped) await stage(segments[next++]!);
    };
    for (let i = 0; i < FETCHES_AT_ONCE; i++) void lane().catch(() => undefined);
  };
  prefetch(segmentsFrom(options.startsAt.timeline, options.startsAt.segno, PREFETCH_AHEAD + 1));

  const loop = (async () => {
    while (!stopped) {
      const wants = (await readdir(dir).catch(() => [])).filter((f) => f.startsWith("want."));
      for (const want of wants) {
        await rm(path.join(dir, want), { force: true });
        await answer(want.slice("want.".length)).catch((error: unknown) => (failure ??= error as Error));
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  })();

  return {
    restoreCommand: `${shellQuote(script)} %f %p`,
    failure: () => failure,
    async stop() {
      stopped = true;
      await loop;
      await Promise.allSettled(fetched.values());
    },
  };
}

/** One shell word, whatever the path holds. */
export function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}
