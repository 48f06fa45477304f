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

export function backupsTable(entries: readonly BackupEntry[]): string {
  const table = new Table({
    head: ["ID", "TARGET", "STATE", "STARTED (UTC)", "DURATION", "SIZE", "VERIFIED"],
    style: { head: [], border: [] },
    chars: {
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
    },
  });
  for (const e of entries) {
    const s = e.statefile;
    table.push([
      e.ref.backupId,
      s?.target ?? "-",
      e.state,
      s ? s.startedAt.replace("T", " ").replace(/\.\d+Z$/, "") : "-",
      s?.finishedAt ? formatDuration(Date.parse(s.finishedAt) - Date.parse(s.startedAt)) : "-",
      s?.artifact ? formatBytes(s.artifact.sizeBytes) : "-",
      s?.verification.status ?? "-",
    ]);
  }
  return table
    .toString()
    .split("\n")
    .map((line) => line.trimEnd().replace(/^ /, ""))
    .join("\n");
}
