/** The benches' PostgreSQL database `bench`: one table of random text, ~1 KB rows of hex words with spaces. */
import type { Measured } from "./measure.js";

/** Creates and fills `bench` to about `targetMb`; resolves with its row count and its size in bytes. */
export async function createBenchDatabase(
  psql: (db: string, sql: string) => Promise<Measured>,
  targetMb: number,
): Promise<{ rows: number; sizeBytes: number }> {
  await psql("postgres", "CREATE DATABASE bench");
  await psql("bench", "CREATE TABLE notes (id bigint PRIMARY KEY, body text)");
  const rows = Math.ceil((targetMb * 1024 * 1024) / 1100);
  const batch = 100_000;
  for (let start = 1; start <= rows; start += batch) {
    await psql(
      "bench",
      `INSERT INTO notes SELECT g, (SELECT string_agg(substr(md5(random()::text), 1, 4 + (random() * 12)::int), ' ') FROM generate_series(1, 100 + (g % 3))) FROM generate_series(${start}, ${Math.min(rows, start + batch - 1)}) g`,
    );
  }
  await psql("bench", "VACUUM ANALYZE notes");
  const sizeBytes = Number((await psql("bench", "SELECT pg_database_size('bench')")).stdout.trim());
  return { rows, sizeBytes };
}
