/**
 * Retention of a PostgreSQL target's two kinds of backup, and of its streamed WAL (docs/adr/0014 as amended for
 * point-in-time recovery), planned over synthetic listings: which segments go, and that nothing a kept base backup,
 * a running one, or a timeline of unknown descent needs ever does.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  formatLsn,
  type PhysicalBackupInfo,
  segmentStart,
  walFileName,
  type WalHead,
  type WalListing,
  type WalSegmentObject,
} from "../../src/domain/wal.js";
import { planRetention } from "../../src/storage/retention.js";
import { planWalRetention, RUNNING_BACKUP_WAL_MARGIN_MS } from "../../src/storage/wal-retention.js";
import { lineageOf, parseTimelineHistory, timelineOfSegment } from "../../src/storage/wal-timelines.js";
import { entry } from "../support/entries.js";

const SIZE = 16 * 1024 * 1024;
const SYSTEM = "7400000000000000001";

function seg(timeline: number, segno: number, options: { partial?: boolean; storedAt?: string } = {}) {
  return {
    timeline,
    segno,
    name: walFileName(timeline, segno, SIZE),
    partial: options.partial ?? false,
    sizeBytes: 1000 + segno,
    storedAt: new Date(options.storedAt ?? "2026-12-01T00:00:00.000Z"),
  } satisfies WalSegmentObject;
}

function range(timeline: number, from: number, to: number): WalSegmentObject[] {
  return Array.from({ length: to - from + 1 }, (_, i) => seg(timeline, from + i));
}

function listing(segments: WalSegmentObject[], timeline = 1, historyTimelines: number[] = []): WalListing {
  const last = segments.filter((s) => s.timeline === timeline).at(-1)?.segno ?? 0;
  const head: WalHead = {
    version: 1,
    systemIdentifier: SYSTEM,
    timeline,
    segmentSize: SIZE,
    slot: "capsule_db",
    archivedLsn: formatLsn(segmentStart(last, SIZE) + 100n),
    archivedAt: "2026-12-01T00:00:00.000Z",
    coveredUntil: "2026-12-01T00:00:00.000Z",
    serverLsn: formatLsn(segmentStart(last, SIZE) + 100n),
    serverLsnAt: "2026-12-01T00:00:00.000Z",
    updatedAt: "2026-12-01T00:00:00.000Z",
  };
  return { segments, historyTimelines, head };
}

function base(backupId: string, timeline: number, startSegno: number, system = SYSTEM) {
  const physical: PhysicalBackupInfo = {
    systemIdentifier: system,
    timeline,
    startLsn: formatLsn(segmentStart(startSegno, SIZE) + 0x28n),
    endLsn: formatLsn(segmentStart(startSegno, SIZE) + 0x9000n),
    endTime: "2026-12-01T00:00:00.000Z",
    walSegmentSize: SIZE,
  };
  return { backupId, physical };
}

const names = (segments: readonly WalSegmentObject[]) =>
  segments.map((s) => `${s.name}${s.partial ? ".partial" : ""}`);
const noHistory = lineageOf(new Map());

describe("kind-aware retention of a PostgreSQL target", () => {
  test("GIVEN hourly logical dumps and daily physical base backups WHEN keepLast 2 THEN each kind keeps its own two newest", () => {
    const dumps = Array.from({ length: 24 }, (_, h) =>
      entry({ at: `2026-12-04T${String(h).padStart(2, "0")}:30:00.000Z` }),
    );
    const bases = [1, 2, 3, 4].map((d) =>
      entry({ at: `2026-12-0${d}T01:00:00.000Z`, kind: "physical", physical: base("x", 1, d).physical }),
    );
    const plan = planRetention([...dumps, ...bases], { keepLast: 2 }, new Date("2026-12-05T00:00:00Z"), []);
    const kept = new Set(plan.keep.map((d) => d.backupId));
    assert.deepEqual(
      bases.filter((b) => kept.has(b.ref.backupId)).map((b) => b.ref.backupId),
      bases.slice(2).map((b) => b.ref.backupId),
      "the two newest base backups stay, though 24 newer dumps exist",
    );
    assert.deepEqual(
      dumps.filter((b) => kept.has(b.ref.backupId)).map((b) => b.ref.backupId),
      dumps.slice(22).map((b) => b.ref.backupId),
      "the two newest dumps stay, not pushed out by the base backups",
    );
    assert.equal(plan.delete.length, 22 + 2);
    assert.ok(
      plan.keep.every(
        (d) => d.kind === (bases.some((b) => b.ref.backupId === d.backupId) ? "physical" : "logical"),
      ),
    );
    assert.match(
      plan.keep.find((d) => d.backupId === bases[3]!.ref.backupId)!.reason,
      /newest restorable physical/,
    );
  });

  test("GIVEN the newest base backup failed its drill and an older one was verified WHEN keepLast 1 THEN the verified base backup stays beside the newest restorable dump", () => {
    const verified = entry({
      at: "2026-12-01T01:00:00.000Z",
      kind: "physical",
      physical: base("a", 1, 1).physical,
      verification: { status: "verified" },
    });
    const unproven = entry({
      at: "2026-12-02T01:00:00.000Z",
      kind: "physical",
      physical: base("b", 1, 5).physical,
    });
    const dump = entry({ at: "2026-12-03T01:00:00.000Z" });
    const plan = planRetention(
      [verified, unproven, dump],
      { keepLast: 1 },
      new Date("2026-12-05T00:00:00Z"),
      [],
    );
    assert.deepEqual(plan.delete, []);
    assert.equal(plan.keep.length, 3);
  });
});

describe("WAL retention", () => {
  test("GIVEN WAL 1..20 and base backups starting in segments 8 and 14 WHEN planned THEN segments 1..7 go oldest first and 8..20 stay", () => {
    const wal = listing([...range(1, 1, 20), seg(1, 21, { partial: true })]);
    const plan = planWalRetention({
      listing: wal,
      lineage: noHistory,
      kept: [base("b1", 1, 8), base("b2", 1, 14)],
      running: [],
    });
    assert.deepEqual(names(plan.delete), names(range(1, 1, 7)));
    assert.equal(
      plan.deleteBytes,
      range(1, 1, 7).reduce((n, s) => n + s.sizeBytes, 0),
    );
    assert.equal(plan.keptFrom, walFileName(1, 8, SIZE));
    assert.equal(plan.listed, 21);
  });

  test("GIVEN no succeeded physical base backup WHEN planned THEN no WAL goes and the plan says it grows until one exists", () => {
    const plan = planWalRetention({
      listing: listing(range(1, 1, 9)),
      lineage: noHistory,
      kept: [],
      running: [],
    });
    assert.deepEqual(plan.delete, []);
    assert.match(plan.keptAll ?? "", /no succeeded physical base backup.*grows until a base backup exists/);
  });

  test("GIVEN a base backup of another system than the head WHEN planned THEN no WAL goes", () => {
    const plan = planWalRetention({
      listing: listing(range(1, 1, 9)),
      lineage: noHistory,
      kept: [base("b1", 1, 5), base("old", 1, 3, "7399999999999999999")],
      running: [],
    });
    assert.deepEqual(plan.delete, []);
    assert.match(plan.keptAll ?? "", /base backup old is of system 7399999999999999999/);
  });

  test("GIVEN a running physical base backup WHEN planned THEN WAL stored since shortly before it began stays, older WAL before the kept base backup goes", () => {
    const began = "2026-12-02T12:00:00.000Z";
    const margin = new Date(Date.parse(began) - RUNNING_BACKUP_WAL_MARGIN_MS / 2).toISOString();
    const segments = [
      seg(1, 1, { storedAt: "2026-12-01T00:00:00.000Z" }),
      seg(1, 2, { storedAt: "2026-12-01T00:00:00.000Z" }),
      seg(1, 3, { storedAt: margin }),
      seg(1, 4, { storedAt: "2026-12-02T12:00:05.000Z" }),
      seg(1, 5, { storedAt: "2026-12-02T12:00:05.000Z" }),
    ];
    const plan = planWalRetention({
      listing: listing(segments),
      lineage: noHistory,
      kept: [base("b1", 1, 5)],
      running: [{ backupId: "r", startedAt: began }],
    });
    assert.deepEqual(
      names(plan.delete),
      names(segments.slice(0, 2)),
      "segments 3 and 4 are the running backup's",
    );
  });

  test("GIVEN a switch from timeline 1 to 2 in segment 10 WHEN the kept base backups are on timeline 2 THEN timeline 1's WAL goes, after the branch point too, and timeline 2's before the oldest base", () => {
    // Timeline 1 ran on to segment 14 (the old primary) after timeline 2 branched off in segment 10.
    const history = new Map([[2, "1\t0/A000100\tno recovery target specified\n"]]);
    const lineage = lineageOf(history);
    const wal = listing([...range(1, 1, 14), ...range(2, 10, 20)], 2, [2]);
    const plan = planWalRetention({ listing: wal, lineage, kept: [base("b2", 2, 12)], running: [] });
    assert.deepEqual(
      names(plan.delete),
      names(
        [...range(1, 1, 14), ...range(2, 10, 11)].sort(
          (a, b) => a.segno - b.segno || a.timeline - b.timeline,
        ),
      ),
    );
  });

  test("GIVEN a switch from timeline 1 to 2 WHEN a kept base backup is on timeline 1 THEN timeline 1's segments after the branch point stay for it, and timeline 2's from its start", () => {
    const lineage = lineageOf(new Map([[2, "1\t0/A000100\tno recovery target specified\n"]]));
    const wal = listing([...range(1, 1, 14), ...range(2, 10, 20)], 2, [2]);
    const plan = planWalRetention({
      listing: wal,
      lineage,
      kept: [base("b1", 1, 6), base("b2", 2, 15)],
      running: [],
    });
    assert.deepEqual(names(plan.delete), names(range(1, 1, 5)));
  });

  test("GIVEN segments on timeline 2 without a history file WHEN the base backup is on timeline 1 THEN every timeline-2 segment stays (its descent is unknown)", () => {
    const wal = listing([...range(1, 1, 10), ...range(2, 8, 12)], 2);
    const plan = planWalRetention({
      listing: wal,
      lineage: noHistory,
      kept: [base("b1", 1, 6)],
      running: [],
    });
    assert.deepEqual(names(plan.delete), names(range(1, 1, 5)));
  });

  test("GIVEN a branch no kept base backup is on WHEN planned THEN its WAL stays", () => {
    // Timelines 2 and 3 both branched off timeline 1; the base backup is on 2; 3 is someone else's restore.
    const lineage = lineageOf(
      new Map([
        [2, "1\t0/A000000\tx\n"],
        [3, "1\t0/C000000\ty\n"],
      ]),
    );
    const wal = listing([...range(1, 1, 12), ...range(2, 10, 16), ...range(3, 12, 14)], 2, [2, 3]);
    const plan = planWalRetention({ listing: wal, lineage, kept: [base("b2", 2, 11)], running: [] });
    assert.ok(
      plan.delete.every((s) => s.timeline !== 3),
      "timeline 3 is unrelated to the kept base backup",
    );
    assert.deepEqual(
      names(plan.delete),
      names([...range(1, 1, 12), seg(2, 10)].sort((a, b) => a.segno - b.segno || a.timeline - b.timeline)),
    );
  });
});

describe("timeline history", () => {
  test("GIVEN PostgreSQL's history file WHEN parsed THEN the ancestors and their switchpoints come out, and the segment owner follows them", () => {
    const text = "1\t0/A000100\tno recovery target specified\n\n2\t0/C000000\tat restore point\n";
    assert.deepEqual(parseTimelineHistory(text), [
      { timeline: 1, switchpoint: 0xa000100n },
      { timeline: 2, switchpoint: 0xc000000n },
    ]);
    assert.equal(parseTimelineHistory("garbage"), undefined);
    const lineage = lineageOf(new Map([[3, text]]));
    assert.equal(timelineOfSegment(lineage, 3, 9, SIZE), 1);
    assert.equal(timelineOfSegment(lineage, 3, 10, SIZE), 2, "the switch segment is the child's copy");
    assert.equal(timelineOfSegment(lineage, 3, 12, SIZE), 3);
    assert.equal(timelineOfSegment(lineage, 4, 12, SIZE), undefined);
  });
});
