import Table from "cli-table3";
import yaml from "js-yaml";
import type { BackupEntry } from "../storage/backup-store.js";
import type { OutputFormat } from "./base-command.js";
import { formatBytes, formatDuration } from "../util/format.js";

export { formatBytes, formatDuration };

/** Machine formats of any value; `table` callers render their own columns. */
export function render(format: OutputFormat, value: unknown): string {
  if (format === "yaml") return yaml.dump(value, { noRefs: true, lineWidth: 120 });
  return JSON.stringify(value, null, 2);
}

/** The statefile of an entry, or what we know of a corrupt one. */
export function entryDocument(entry: BackupEntry): unknown {
  return entry.statefile
    ? { ...entry.statefile, state: entry.state }
    : {
        backupId: entry.ref.backupId,
        cluster: entry.ref.cluster,
        engine: entry.ref.engine,
        state: entry.state,
        key: entry.key,
        problem: entry.problem,
      };
}

const PLAIN_CHARS = {
  top: "",
  "top-mid": "",
  "top-left": "",
  "top-right": "",
  bottom: "",
  "bottom-mid": "",
  "bottom-left": "",
  "bottom-right": "",
  left: "",
  "left-mid": "",
  mid: "",
  "mid-mid": "",
  right: "",
  "right-mid": "",
  middle: "  ",
};

/** A borderless table like kubectl's: a header row, columns separated by spaces. */
function plainTable(head: string[], rows: string[][]): string {
  const table = new Table({ head, style: { head: [], border: [] }, chars: PLAIN_CHARS });
  table.push(...rows);
  return table
    .toString()
    .split("\n")
    .map((line) => line.trimEnd().replace(/^ /, ""))
    .join("\n");
}

export function decisionsTable(
  rows: ReadonlyArray<{ backupId: string; target: string; state: string; decision: string; reason: string }>,
): string {
  return plainTable(
    ["ID", "TARGET", "STATE", "DECISION", "WHY"],
    rows.map((r) => [r.backupId, r.target, r.state, r.decision, r.reason]),
  );
}

export function findingsTable(
  findings: ReadonlyArray<{ kind: string; backupId: string; key: string; detail: string }>,
): string {
  return plainTable(
    ["ID", "PROBLEM", "DETAIL", "KEY"],
    findings.map((f) => [f.backupId, f.kind, f.detail, f.key]),
  );
}

export function backupsTable(entries: readonly BackupEntry[]): string {
  return plainTable(
    ["ID", "TARGET", "STATE", "STARTED (UTC)", "DURATION", "SIZE", "VERIFIED"],
    entries.map((e) => {
      const s = e.statefile;
      return [
        e.ref.backupId,
        s?.target ?? "-",
        e.state,
        s ? s.startedAt.replace("T", " ").replace(/\.\d+Z$/, "") : "-",
        s?.finishedAt ? formatDuration(Date.parse(s.finishedAt) - Date.parse(s.startedAt)) : "-",
        s?.artifact ? formatBytes(s.artifact.sizeBytes) : "-",
        s?.verification.status ?? "-",
      ];
    }),
  );
}
