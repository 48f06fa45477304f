import type pg from "pg";

/**
 * What a PostgreSQL backup promises about its data: exact row counts per table, taken in the same snapshot as the
 * dump, so a restore (or a verification drill) can prove it brought back every row.
 */
export interface PgFingerprint {
  /** "schema.table" → rows, for every ordinary table outside the system schemas. */
  tables: Record<string, number>;
  serverVersion: string;
  databaseSizeBytes: number;
}

const TABLES_SQL = `
  SELECT n.nspname AS schema, c.relname AS name
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r'
    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
  ORDER BY 1, 2`;

/** Exact row counts of every user table, in whatever snapshot `client`'s transaction holds. */
export async function tableRowCounts(client: pg.Client): Promise<Record<string, number>> {
  const tables = await client.query<{ schema: string; name: string }>(TABLES_SQL);
  const counts: Record<string, number> = {};
  for (const { schema, name } of tables.rows) {
    const result = await client.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM ONLY ${quote(schema)}.${quote(name)}`,
    );
    counts[`${schema}.${name}`] = Number(result.rows[0]?.n ?? 0);
  }
  return counts;
}

/**
 * Human-readable differences between two row-count maps; empty when they agree. `allowExtraTables` accepts tables
 * the backup does not know (an in-place restore only replaces what the dump contains).
 */
export function compareRowCounts(
  expected: Record<string, number>,
  actual: Record<string, number>,
  options: { allowExtraTables?: boolean } = {},
): string[] {
  const differences: string[] = [];
  for (const table of new Set([...Object.keys(expected), ...Object.keys(actual)])) {
    const want = expected[table];
    const got = actual[table];
    if (want === undefined) {
      if (!options.allowExtraTables) differences.push(`${table}: not in the backup (has ${got} rows)`);
    } else if (got === undefined) differences.push(`${table}: missing (backup has ${want} rows)`);
    else if (want !== got) differences.push(`${table}: ${got} rows, backup has ${want}`);
  }
  return differences.sort();
}

function quote(identifier: string): string {
  return `"${identifier.replace(/"/g, '""')}"`;
}
