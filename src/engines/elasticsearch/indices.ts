/**
 * Which indices a backup or restore covers, and under which names they are restored. Pure functions.
 *
 * `--indices` is a comma-separated list of names and patterns (`*` any run of characters, `?` one character);
 * a leading `-` excludes. Wildcards never match system indices (names starting with ".") or hidden ones
 * (`index.hidden: true`) unless the pattern itself starts with "."; an exact name always matches.
 */
import { configError } from "../connection-fields.js";

export interface IndexInfo {
  readonly name: string;
  readonly hidden?: boolean;
}

export const DEFAULT_INDEX_PATTERN = "*";

export function parsePatterns(text: string | undefined): string[] {
  const patterns = (text ?? DEFAULT_INDEX_PATTERN)
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
  if (patterns.length === 0)
    throw configError("indices", `{indices}: no pattern given (got ${JSON.stringify(text)})`);
  if (patterns.every((p) => p.startsWith("-"))) patterns.unshift(DEFAULT_INDEX_PATTERN);
  return patterns;
}

function wildcardRegExp(pattern: string): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${body}$`);
}

function hasWildcard(pattern: string): boolean {
  return pattern.includes("*") || pattern.includes("?");
}

/** Whether one (non-negated) pattern selects an index. */
export function patternMatches(pattern: string, index: IndexInfo): boolean {
  if (!hasWildcard(pattern)) return pattern === index.name;
  const special = index.name.startsWith(".") || index.hidden === true;
  if (special && !(pattern.startsWith(".") && index.name.startsWith("."))) return false;
  return wildcardRegExp(pattern).test(index.name);
}

/** The indices the patterns select, in name order; later patterns win (`*,-logs-*,logs-keep`). */
export function selectIndices<T extends IndexInfo>(all: readonly T[], patterns: readonly string[]): T[] {
  return all
    .filter((index) => {
      let selected = false;
      for (const p of patterns) {
        if (p.startsWith("-")) {
          if (patternMatches(p.slice(1), index)) selected = false;
        } else if (patternMatches(p, index)) selected = true;
      }
      return selected;
    })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Exact names in the patterns that select nothing: almost always a typo the user wants to hear about. */
export function unmatchedNames(all: readonly IndexInfo[], patterns: readonly string[]): string[] {
  return patterns.filter(
    (p) => !p.startsWith("-") && !hasWildcard(p) && !all.some((index) => index.name === p),
  );
}

export interface Rename {
  readonly pattern: RegExp;
  readonly replacement: string;
}

/** `--rename-pattern`/`--rename-replacement` (both or neither), as Elasticsearch's snapshot restore reads them. */
export function parseRename(
  pattern: string | undefined,
  replacement: string | undefined,
): Rename | undefined {
  if (pattern === undefined && replacement === undefined) return undefined;
  if (pattern === undefined || replacement === undefined) {
    throw configError("renamePattern", "{renamePattern} and {renameReplacement} go together");
  }
  try {
    return { pattern: new RegExp(pattern, "g"), replacement };
  } catch (error) {
    throw configError(
      "renamePattern",
      `{renamePattern} ${JSON.stringify(pattern)}: ${(error as Error).message}`,
    );
  }
}

export function renamed(name: string, rename: Rename | undefined): string {
  if (!rename) return name;
  rename.pattern.lastIndex = 0;
  return name.replace(rename.pattern, rename.replacement);
}

/** Why a name cannot be an Elasticsearch index name, or undefined when it can. */
export function invalidIndexName(name: string): string | undefined {
  if (name.length === 0) return "empty";
  if (name === "." || name === "..") return `"${name}" is reserved`;
  if (name !== name.toLowerCase()) return "must be lowercase";
  if (/^[-_+]/.test(name)) return 'must not start with "-", "_" or "+"';
  if (/[\\/*?"<>| ,#:]/.test(name)) return 'must not contain \\ / * ? " < > | space , # :';
  if (Buffer.byteLength(name) > 255) return "longer than 255 bytes";
  return undefined;
}
