/**
 * A small YAML emitter for compiled manifests: plain JSON data (objects, arrays, strings, finite numbers, booleans,
 * null) in block style with keys sorted at every level, so the bytes never depend on how an object was built.
 * Why not js-yaml's `dump`: it was 40 % of `capsule plan` on 6,000 CronJobs (docs/design.md §14: issue 4 asks for < 2 s), and
 * manifests need none of its generality. Round-trips through js-yaml and stays unambiguous for YAML 1.1 readers
 * (kubectl's go-yaml): anything that could read as a bool, null or number is quoted.
 */

/** Plain (unquoted) scalars: start with a letter or "/", no spaces, colons, "#" or flow indicators. */
const PLAIN = /^[A-Za-z/][A-Za-z0-9_./-]*$/;
/** Words YAML 1.1 or 1.2 read as bool or null. */
const KEYWORDS = /^(y|n|yes|no|on|off|true|false|null)$/i;
/** Printable text without line breaks or control characters: safe in single quotes, which need no escapes. */
const SINGLE_QUOTABLE = /^[^\p{C}]*$/u;

export function scalar(value: string | number | boolean | null): string {
  if (value === null) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error(`cannot write ${value} to YAML`);
    return String(value);
  }
  if (PLAIN.test(value) && !KEYWORDS.test(value)) return value;
  if (SINGLE_QUOTABLE.test(value)) return `'${value.replace(/'/g, "''")}'`;
  return JSON.stringify(value); // JSON escapes are valid in YAML double-quoted scalars
}

/** One YAML document for an object, ending in a newline. */
export function dumpYaml(document: object): string {
  const lines: string[] = [];
  writeMapping(document as Record<string, unknown>, "", lines, "");
  return `${lines.join("\n")}\n`;
}

/** Writes a mapping's entries; the first line starts with `firstPrefix` (a sequence dash) instead of `indent`. */
function writeMapping(
  map: Record<string, unknown>,
  indent: string,
  lines: string[],
  firstPrefix: string,
): void {
  let prefix = firstPrefix || indent;
  for (const key of Object.keys(map).sort()) {
    const value = map[key];
    if (value === undefined) continue;
    writeEntry(`${prefix}${scalar(key)}:`, value, `${indent}  `, lines);
    prefix = indent;
  }
}

/** `head` is the text before the value (a key and colon, or a dash); nested blocks go at `indent`. */
function writeEntry(head: string, value: unknown, indent: string, lines: string[]): void {
  if (Array.isArray(value)) {
    if (value.length === 0) lines.push(`${head} []`);
    else {
      lines.push(head);
      writeSequence(value, indent, lines);
    }
  } else if (value !== null && typeof value === "object") {
    if (!hasEntries(value)) lines.push(`${head} {}`);
    else {
      lines.push(head);
      writeMapping(value as Record<string, unknown>, indent, lines, "");
    }
  } else {
    lines.push(`${head} ${scalar(value as string | number | boolean | null)}`);
  }
}

function writeSequence(items: readonly unknown[], indent: string, lines: string[]): void {
  for (const item of items) {
    if (item !== null && typeof item === "object" && !Array.isArray(item) && hasEntries(item)) {
      // `- key: value` with the following keys aligned under the first.
      writeMapping(item as Record<string, unknown>, `${indent}  `, lines, `${indent}- `);
    } else if (Array.isArray(item) && item.length > 0) {
      lines.push(`${indent}-`);
      writeSequence(item, `${indent}  `, lines);
    } else {
      writeEntry(`${indent}-`, item, `${indent}  `, lines);
    }
  }
}

function hasEntries(map: object): boolean {
  return Object.values(map).some((v) => v !== undefined);
}
