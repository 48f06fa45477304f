/**
 * Which timeline descends from which, read from the history files in a target's WAL (docs/adr/0021): what WAL
 * retention and the integrity sweep need to tell a segment a base backup replays from one on a branch it never
 * follows. A history file `0000000N.history` lists timeline N's ancestors, oldest first, each with the LSN where N's
 * line left it; timeline 1 has none.
 */
import { isLsn, type Lsn, parseLsn, segmentOf, type WalListing, type WalSource } from "../domain/wal.js";

export interface TimelineAncestor {
  readonly timeline: number;
  /** Where the line of descent left this timeline: its WAL after this point belongs to another branch. */
  readonly switchpoint: Lsn;
}

export interface TimelineLineage {
  /**
   * A timeline's ancestors, oldest first; `[]` for timeline 1; undefined when its history file is missing or
   * unreadable, so nothing about its descent is known.
   */
  ancestorsOf(timeline: number): readonly TimelineAncestor[] | undefined;
}

/** PostgreSQL's history file format: `parentTLI<TAB>switchpoint<TAB>reason` per line, `#` comments. */
export function parseTimelineHistory(text: string): TimelineAncestor[] | undefined {
  const ancestors: TimelineAncestor[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const [tli, lsn] = line.split(/\s+/);
    if (!tli || !/^\d+$/.test(tli) || !lsn || !isLsn(lsn)) return undefined;
    ancestors.push({ timeline: Number(tli), switchpoint: parseLsn(lsn) });
  }
  return ancestors;
}

export function lineageOf(histories: ReadonlyMap<number, string>): TimelineLineage {
  const parsed = new Map<number, readonly TimelineAncestor[] | undefined>();
  for (const [timeline, text] of histories) parsed.set(timeline, parseTimelineHistory(text));
  return {
    ancestorsOf: (timeline) => (timeline === 1 ? [] : parsed.get(timeline)),
  };
}

/** Reads every history file the listing names (each a few hundred bytes). */
export async function loadLineage(source: WalSource, listing: WalListing): Promise<TimelineLineage> {
  const histories = new Map<number, string>();
  for (const timeline of listing.historyTimelines) {
    const content = await source.fetchHistory(timeline);
    if (content) histories.set(timeline, content.toString("utf8"));
  }
  return lineageOf(histories);
}

/** Whether `timeline` is `ancestor` or descends from it; undefined when `timeline`'s descent is unknown. */
export function descendsFrom(
  lineage: TimelineLineage,
  timeline: number,
  ancestor: number,
): boolean | undefined {
  if (timeline === ancestor) return true;
  const ancestors = lineage.ancestorsOf(timeline);
  return ancestors?.some((a) => a.timeline === ancestor);
}

/**
 * The timeline a replay along `timeline`'s line of descent reads segment `segno` from: the oldest one on the line
 * whose switchpoint lies past the segment. The segment holding a switchpoint is the child's: the server copies it
 * under the new timeline at the switch. Undefined when the line is unknown.
 */
export function timelineOfSegment(
  lineage: TimelineLineage,
  timeline: number,
  segno: number,
  segmentSize: number,
): number | undefined {
  const ancestors = lineage.ancestorsOf(timeline);
  if (!ancestors) return undefined;
  return ancestors.find((a) => segno < segmentOf(a.switchpoint, segmentSize))?.timeline ?? timeline;
}
