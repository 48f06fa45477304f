import Table from "cli-table3";
import yaml from "js-yaml";
import type { BackupEntry } from "../storage/backup-store.js";
import { formatBytes, formatDuration } from "../util/format.js";

export { formatBytes, formatDuration };

export const OUTPUT_FORMATS = ["table", "json", "yaml"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** Machine formats of any value; `table` callers render their own columns. */
export function render(format: OutputFormat, value: unknown): string {
  if (format === "yaml") return yaml.dump(value, { noRefs: true, lineWidth: 120 });
  return JSON.stringify(value, null, 2);
}

/**
 * What a command hands the reporter: its result as a document (`-o json|yaml`) and as the table view. Either may be
 * absent: the command then prints nothing on stdout in that format (its notes went to stderr as it worked).
 */
export interface Report {
  readonly document?: unknown;
  /** A function when building it costs (a table of 10,000 backups): built only when the table is what is printed. */
  readonly table?: string | (() => string);
  /** Non-zero when the command found something to act on (`--check` found damage). */
  readonly exitCode?: number;
}

/**
 * `report` in pieces of about 64 KiB, for writing as they come: a JSON array is rendered element by element, so a
 * listing of 100,000 backups never becomes one string of tens of MB. The pieces join to exactly what `report` returns.
 */
export function* reportPieces(format: OutputFormat, result: Report): Generator<string> {
  const items = result.document;
  if (format !== "json" || !Array.isArray(items) || items.length === 0) {
    const text = report(format, result);
    if (text) yield text;
    return;
  }
  let piece = "[\n";
  for (let i = 0; i < items.length; i++) {
    // JSON.stringify(array, null, 2) indents each element's lines by two more spaces; no string holds a raw newline.
    const element = (JSON.stringify(items[i], null, 2) ?? "null").replaceAll("\n", "\n  ");
    piece += `  ${element}${i + 1 < items.length ? "," : ""}\n`;
    if (piece.length >= PIECE_CHARS) {
      yield piece;
      piece = "";
    }
  }
  yield `${piece}]\n`;
}

const PIECE_CHARS = 64 * 1024;

/** The one place a result becomes stdout: the text to write for `format`, with its final newline. */
export function report(format: OutputFormat, result: Report): string {
  const text =
    format === "table"
      ? typeof result.table === "function"
        ? result.table()
        : result.table
      : result.document === undefined
        ? undefined
        : render(format, result.document);
  if (text === undefined) return "";
  return text.endsWith("\n") ? text : `${text}\n`;
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

/** Cells the fast path of plainTable renders: printable ASCII, one line. */
const PLAIN_ASCII = /^[\x20-\x7e]*$/;

/** cli-table3's border characters, all blank; columns are separated by two spaces. */
const PLAIN_CHARS = {
  ...Object.fromEntries(
    ["top", "top-mid", "top-left", "top-right", "bottom", "bottom-mid", "bottom-left", "bottom-right"]
      .concat(["left", "left-mid", "mid", "mid-mid", "right", "right-mid"])
      .map((name) => [name, ""]),
  ),
  middle: "  ",
};

/** A borderless table like kubectl's: a header row, columns separated by spaces. */
function plainTable(head: string[], rows: string[][]): string {
  // cli-table3 lays rows out in quadratic time (~20 s for 10,000 backups); single-line printable ASCII needs none of
  // its layout, so it is padded here to the same text. Anything else still goes through cli-table3.
  if ([head, ...rows].every((row) => row.every((cell) => PLAIN_ASCII.test(cell)))) {
    const widths = head.map((_, i) => Math.max(...[head, ...rows].map((row) => (row[i] ?? "").length)));
    return [head, ...rows]
      .map((row) =>
        widths
          .map((width, i) => ` ${(row[i] ?? "").padEnd(width)} `)
          .join(PLAIN_CHARS.middle)
          .trimEnd()
          .replace(/^ /, ""),
      )
      .join("\n");
  }
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
  // The KIND column only where a physical backup is listed: a list of dumps reads as it always has.
  const kinds = entries.some((e) => e.statefile?.kind === "physical");
  return plainTable(
    ["ID", "TARGET", ...(kinds ? ["KIND"] : []), "STATE", "STARTED (UTC)", "DURATION", "SIZE", "VERIFIED"],
    entries.map((e) => {
      const s = e.statefile;
      return [
        e.ref.backupId,
        s?.target ?? "-",
        ...(kinds ? [s?.kind ?? "logical"] : []),
        e.state,
        s ? s.startedAt.replace("T", " ").replace(/\.\d+Z$/, "") : "-",
        s?.finishedAt ? formatDuration(Date.parse(s.finishedAt) - Date.parse(s.startedAt)) : "-",
        s?.artifact ? formatBytes(s.artifact.sizeBytes) : "-",
        s?.verification.status ?? "-",
      ];
    }),
  );
}
