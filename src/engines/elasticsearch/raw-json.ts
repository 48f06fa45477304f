/**
 * Raw JSON spans: the exact text of values inside a JSON document, found without parsing them. Documents travel
 * through capsule as the bytes Elasticsearch stored (`_source`), never through `JSON.parse` + `JSON.stringify`, which
 * would round integers beyond 2^53 and reorder nothing but still cost time. Pure functions; no I/O.
 */

export class RawJsonError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RawJsonError";
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COLON = 0x3a;
const COMMA = 0x2c;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function skipSpace(text: string, at: number): number {
  while (at < text.length && isSpace(text.charCodeAt(at))) at++;
  return at;
}

/** The index just past the string that starts (with its quote) at `at`. */
function endOfString(text: string, at: number): number {
  let i = at + 1;
  for (;;) {
    const q = text.indexOf('"', i);
    if (q < 0) throw new RawJsonError(`unterminated string at ${at}`);
    let backslashes = 0;
    for (let j = q - 1; j > at && text.charCodeAt(j) === BACKSLASH; j--) backslashes++;
    if (backslashes % 2 === 0) return q + 1;
    i = q + 1;
  }
}

/** The index just past the value that starts at `at` (no leading whitespace). */
export function endOfValue(text: string, at: number): number {
  const c = text.charCodeAt(at);
  if (c === QUOTE) return endOfString(text, at);
  if (c === OPEN_BRACE || c === OPEN_BRACKET) {
    let depth = 0;
    let i = at;
    while (i < text.length) {
      const ch = text.charCodeAt(i);
      if (ch === QUOTE) {
        i = endOfString(text, i);
        continue;
      }
      if (ch === OPEN_BRACE || ch === OPEN_BRACKET) depth++;
      else if (ch === CLOSE_BRACE || ch === CLOSE_BRACKET) {
        depth--;
        if (depth === 0) return i + 1;
      }
      i++;
    }
    throw new RawJsonError(`unterminated ${c === OPEN_BRACE ? "object" : "array"} at ${at}`);
  }
  // number, true, false, null: up to the next delimiter
  let i = at;
  while (i < text.length) {
    const ch = text.charCodeAt(i);
    if (ch === COMMA || ch === CLOSE_BRACE || ch === CLOSE_BRACKET || isSpace(ch)) break;
    i++;
  }
  if (i === at) throw new RawJsonError(`expected a value at ${at}`);
  return i;
}

/** A member's value as [start, end) offsets into the text. */
export type Span = readonly [start: number, end: number];

/**
 * The members of the object starting at `at` (whitespace allowed before it): key → span of its raw value. Keys are
 * decoded (JSON.parse of the key text, which is small); values are not touched.
 */
export function objectMembers(text: string, at = 0): { members: Map<string, Span>; end: number } {
  let i = skipSpace(text, at);
  if (text.charCodeAt(i) !== OPEN_BRACE) throw new RawJsonError(`expected an object at ${i}`);
  const members = new Map<string, Span>();
  i = skipSpace(text, i + 1);
  if (text.charCodeAt(i) === CLOSE_BRACE) return { members, end: i + 1 };
  for (;;) {
    if (text.charCodeAt(i) !== QUOTE) throw new RawJsonError(`expected a key at ${i}`);
    const keyEnd = endOfString(text, i);
    const rawKey = text.slice(i, keyEnd);
    const key = rawKey.includes("\\") ? (JSON.parse(rawKey) as string) : rawKey.slice(1, -1);
    i = skipSpace(text, keyEnd);
    if (text.charCodeAt(i) !== COLON) throw new RawJsonError(`expected ":" at ${i}`);
    const start = skipSpace(text, i + 1);
    const end = endOfValue(text, start);
    members.set(key, [start, end]);
    i = skipSpace(text, end);
    const ch = text.charCodeAt(i);
    if (ch === COMMA) {
      i = skipSpace(text, i + 1);
      continue;
    }
    if (ch === CLOSE_BRACE) return { members, end: i + 1 };
    throw new RawJsonError(`expected "," or "}" at ${i}`);
  }
}

/** The raw text of a span. */
export function slice(text: string, span: Span | undefined): string | undefined {
  return span ? text.slice(span[0], span[1]) : undefined;
}

/**
 * Raw JSON made safe for one NDJSON line: a raw line break can only be whitespace between tokens (JSON strings
 * cannot hold one), so it becomes a space. A pretty-printed `_source` stays byte-identical otherwise.
 */
export function oneLine(raw: string): string {
  return raw.includes("\n") || raw.includes("\r") ? raw.replace(/[\r\n]/g, " ") : raw;
}

/** One search hit, with its metadata decoded and its `_source` and `sort` left raw. */
export interface RawHit {
  readonly index: string;
  readonly id: string;
  readonly routing?: string;
  /** Raw JSON of `_source`; undefined when the hit has none (`_source` disabled). */
  readonly source?: string;
  /** Raw JSON of the hit's `sort` array. */
  readonly sort?: string;
}

/**
 * The hits of a search (or scroll) response body, plus the top-level fields a pager needs. The body is walked once;
 * only small values (`pit_id`, `_scroll_id`, `hits.total`, ids) are decoded.
 */
export function searchPage(text: string): {
  hits: RawHit[];
  pitId?: string;
  scrollId?: string;
  total?: { value: number; relation: string };
} {
  const top = objectMembers(text).members;
  const decode = <T>(span: Span | undefined): T | undefined =>
    span ? (JSON.parse(text.slice(span[0], span[1])) as T) : undefined;
  const pitId = decode<string>(top.get("pit_id"));
  const scrollId = decode<string>(top.get("_scroll_id"));
  const hitsSpan = top.get("hits");
  if (!hitsSpan) throw new RawJsonError("search response without hits");
  const hitsObject = objectMembers(text, hitsSpan[0]).members;
  const rawTotal = decode<number | { value: number; relation: string }>(hitsObject.get("total"));
  const total =
    rawTotal === undefined
      ? undefined
      : typeof rawTotal === "number"
        ? { value: rawTotal, relation: "eq" }
        : rawTotal;
  const list = hitsObject.get("hits");
  const hits: RawHit[] = [];
  if (list) {
    let i = skipSpace(text, list[0] + 1);
    while (text.charCodeAt(i) !== CLOSE_BRACKET) {
      // One pass per hit: objectMembers finds each member's end, so the hit is not scanned twice.
      const { members: m, end } = objectMembers(text, i);
      i = skipSpace(text, end);
      if (text.charCodeAt(i) === COMMA) i = skipSpace(text, i + 1);
      else if (text.charCodeAt(i) !== CLOSE_BRACKET) throw new RawJsonError(`expected "," or "]" at ${i}`);
      const routing = decode<string>(m.get("_routing"));
      const source = slice(text, m.get("_source"));
      const sort = slice(text, m.get("sort"));
      hits.push({
        index: decode<string>(m.get("_index")) ?? "",
        id: decode<string>(m.get("_id")) ?? "",
        ...(routing !== undefined ? { routing } : {}),
        ...(source !== undefined ? { source } : {}),
        ...(sort !== undefined ? { sort } : {}),
      });
    }
  }
  return {
    hits,
    ...(pitId !== undefined ? { pitId } : {}),
    ...(scrollId !== undefined ? { scrollId } : {}),
    ...(total ? { total } : {}),
  };
}
