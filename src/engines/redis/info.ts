/**
 * Reading `INFO`: the text reply as fields, and the keyspace section as key counts per database. Pure.
 */

/** `INFO` text → field → value (all sections flattened; Redis field names are unique across sections). */
export function parseInfo(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const colon = line.indexOf(":");
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}

/** Keys and keys-with-a-TTL of one logical database. */
export interface DbCounts {
  keys: number;
  expires: number;
}

/** "db0" → counts, from INFO keyspace (`db0:keys=12,expires=3,avg_ttl=0`). Empty databases are not listed. */
export function parseKeyspace(info: Map<string, string>): Record<string, DbCounts> {
  const result: Record<string, DbCounts> = {};
  for (const [field, value] of info) {
    if (!/^db\d+$/.test(field)) continue;
    const parts = Object.fromEntries(value.split(",").map((kv) => kv.split("=") as [string, string]));
    result[field] = { keys: Number(parts["keys"] ?? 0), expires: Number(parts["expires"] ?? 0) };
  }
  return result;
}

/**
 * The highest RDB version a server of this version loads (rdb.h RDB_VERSION per release), or undefined when the
 * version is newer than capsule knows (then nothing is assumed).
 */
export function maxRdbVersionOf(redisVersion: string): number | undefined {
  const [major = 0, minor = 0] = redisVersion.split(".").map(Number);
  const v = major * 100 + minor;
  if (v >= 800) return undefined; // newer than capsule knows: assume nothing
  if (v >= 704) return 12;
  if (v >= 702) return 11;
  if (v >= 700) return 10;
  if (v >= 500) return 9;
  if (v >= 400) return 8;
  if (v >= 302) return 7;
  return 6;
}
