/**
 * What a Redis backup promises about its data: the keys, and keys with a TTL, of every logical database, counted
 * from the RDB itself while it streams (so they describe exactly the snapshot — docs/adr/0005), and the server
 * version. A restore compares them with the target's INFO keyspace while the target is still a replica of capsule,
 * when nothing can have expired or been written yet, so the comparison can be exact.
 */
import type { DbCounts } from "./info.js";
import type { RdbSummary } from "./rdb.js";

export interface RedisFingerprint {
  serverVersion: string;
  rdbVersion: number;
  /** How the counts were taken: `rdb-scan`, or `none` when the RDB held a structure capsule cannot follow. */
  method: "rdb-scan" | "none";
  /** "db0" → { keys, expires }; databases without keys are absent (as in INFO keyspace). */
  databases?: Record<string, DbCounts>;
  /** Total keys over all databases. */
  keys?: number;
  /** Why there are no counts (method `none`). */
  note?: string;
}

export function fingerprintOf(summary: RdbSummary, serverVersion: string): RedisFingerprint {
  if (!summary.databases) {
    return {
      serverVersion,
      rdbVersion: summary.version,
      method: "none",
      note: summary.unparsed ?? "key counts unavailable",
    };
  }
  return {
    serverVersion,
    rdbVersion: summary.version,
    method: "rdb-scan",
    databases: sortedDatabases(summary.databases),
    keys: Object.values(summary.databases).reduce((sum, d) => sum + d.keys, 0),
  };
}

/** Human-readable differences between the backup's counts and a server's; empty when they agree. */
export function compareKeyspaces(
  expected: Record<string, DbCounts>,
  actual: Record<string, DbCounts>,
): string[] {
  const differences: string[] = [];
  for (const db of Object.keys(sortedDatabases({ ...expected, ...actual }))) {
    const want = expected[db] ?? { keys: 0, expires: 0 };
    const got = actual[db] ?? { keys: 0, expires: 0 };
    if (want.keys !== got.keys) differences.push(`${db}: ${got.keys} keys, backup has ${want.keys}`);
    else if (want.expires !== got.expires) {
      differences.push(`${db}: ${got.expires} keys with a TTL, backup has ${want.expires}`);
    }
  }
  return differences;
}

function sortedDatabases(databases: Record<string, DbCounts>): Record<string, DbCounts> {
  const index = (name: string) => Number(name.slice(2));
  return Object.fromEntries(Object.entries(databases).sort(([a], [b]) => index(a) - index(b)));
}
