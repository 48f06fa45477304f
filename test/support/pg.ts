/** PostgreSQL helpers for tests: connections to the harness server and per-table digests for comparing data. */
import type { PgConnection } from "../../src/engines/postgres/connection.js";
import { withClient } from "../../src/engines/postgres/sql.js";
import type { TestServers } from "../harness/index.js";

export function pgConn(servers: TestServers, database: string): PgConnection {
  return {
    host: servers.pg.host,
    port: servers.pg.port,
    user: servers.pg.user,
    password: servers.pg.password,
    database,
  };
}

/** The libpq environment `capsule pg` reads, for in-process CLI runs. */
export function pgEnv(servers: TestServers, database: string): Record<string, string> {
  return {
    PGHOST: servers.pg.host,
    PGPORT: String(servers.pg.port),
    PGUSER: servers.pg.user,
    PGPASSWORD: servers.pg.password,
    PGDATABASE: database,
  };
}

export async function sql(
  servers: TestServers,
  database: string,
  text: string,
): Promise<Array<Record<string, unknown>>> {
  return withClient(pgConn(servers, database), database, async (c) => {
    const result = await c.query(text);
    const results = Array.isArray(result) ? result : [result];
    return (results.at(-1) as { rows: Array<Record<string, unknown>> }).rows;
  });
}

/** How many pg_dump sessions are connected to `database` (pg_dump names itself in application_name). */
export async function pgDumpSessions(servers: TestServers, database: string): Promise<number> {
  const rows = await sql(
    servers,
    "postgres",
    `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = '${database}' AND application_name = 'pg_dump'`,
  );
  return Number(rows[0]?.["n"]);
}

/**
 * A digest of everything a restore must bring back: every user table's rows in a stable order, sequence
 * positions, large objects, and the definitions of views, functions and triggers.
 */
export async function databaseDigest(
  servers: TestServers,
  database: string,
): Promise<Record<string, string>> {
  return withClient(pgConn(servers, database), database, async (c) => {
    const digest: Record<string, string> = {};
    const tables = await c.query<{ t: string }>(
      `SELECT format('%I.%I', schemaname, tablename) AS t FROM pg_tables
       WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`,
    );
    for (const { t } of tables.rows) {
      const r = await c.query<{ d: string; n: string }>(
        `SELECT md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) AS d, count(*)::text AS n FROM ${t} x`,
      );
      digest[`table ${t}`] = `${r.rows[0]!.n} rows ${r.rows[0]!.d}`;
    }
    const seqs = await c.query<{ s: string; v: string }>(
      `SELECT format('%I.%I', schemaname, sequencename) AS s,
              coalesce(last_value::text, 'unused') || ' step ' || increment_by AS v
       FROM pg_sequences ORDER BY 1`,
    );
    for (const { s, v } of seqs.rows) digest[`sequence ${s}`] = v;
    const los = await c.query<{ d: string }>(
      "SELECT md5(coalesce(string_agg(md5(lo_get(oid)), ',' ORDER BY oid), '')) AS d FROM pg_largeobject_metadata",
    );
    digest["large objects"] = los.rows[0]!.d;
    const defs = await c.query<{ k: string; d: string }>(
      `SELECT 'view ' || viewname AS k, definition AS d FROM pg_views WHERE schemaname = 'public'
       UNION ALL SELECT 'function ' || p.proname, pg_get_functiondef(p.oid) FROM pg_proc p
         JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public' AND p.prokind = 'f'
       UNION ALL SELECT 'trigger ' || tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal
       UNION ALL SELECT 'index ' || indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'
       UNION ALL SELECT 'extension ' || extname, extversion FROM pg_extension
       UNION ALL SELECT 'type ' || t.typname, string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
         FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname`,
    );
    for (const { k, d } of defs.rows) digest[k] = d;
    return digest;
  });
}

/** A database exercising the types and objects a DBA expects a backup to carry. */
export const RICH_SCHEMA = `
  CREATE EXTENSION pgcrypto;
  CREATE EXTENSION hstore;
  CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
  CREATE TABLE everything (
    id bigserial PRIMARY KEY,
    amount numeric(20, 6),
    huge numeric,
    label text,
    blob bytea,
    doc json,
    docb jsonb,
    tags text[],
    matrix int[][],
    at timestamptz,
    local_at timestamp,
    day date,
    feeling mood,
    props hstore,
    uid uuid DEFAULT gen_random_uuid(),
    flag boolean,
    ratio double precision
  );
  CREATE INDEX everything_docb ON everything USING gin (docb);
  CREATE UNIQUE INDEX everything_label ON everything (label);
  INSERT INTO everything (amount, huge, label, blob, doc, docb, tags, matrix, at, local_at, day, feeling, props, flag, ratio)
  SELECT g * 1.5, (10::numeric ^ 40) + g, 'row ' || g || ' — naïve café 日本語 🐘 ''quoted'' "dq" \\ back',
         decode(md5(g::text) || '00ff', 'hex'), json_build_object('g', g, 'nested', json_build_array(1, 'two', null)),
         jsonb_build_object('g', g, 'k', 'v' || g), ARRAY['a' || g, NULL, 'c,d'], ARRAY[[g, g + 1], [g + 2, g + 3]],
         timestamptz '2026-03-29 01:30:00+01' + g * interval '7 minutes', timestamp '2000-01-01' + g * interval '1 day',
         date '1999-12-31' + g, (ARRAY['sad', 'ok', 'happy']::mood[])[1 + g % 3], hstore('k' || g, 'v'),
         g % 2 = 0, 1.0 / g
  FROM generate_series(1, 2000) g;
  INSERT INTO everything (label, blob, at) VALUES ('edge', '\\x00'::bytea, 'infinity'), ('nulls', NULL, NULL);
  CREATE SEQUENCE invoice_no START 1000 INCREMENT 7;
  SELECT setval('invoice_no', 424242, true);
  SELECT setval('everything_id_seq', 999999, true);
  CREATE TABLE audit (id serial PRIMARY KEY, what text, at timestamptz DEFAULT now());
  CREATE FUNCTION log_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO audit (what) VALUES (TG_OP || ' ' || NEW.label); RETURN NEW; END $$;
  CREATE TRIGGER everything_audit AFTER INSERT ON everything FOR EACH ROW EXECUTE FUNCTION log_change();
  CREATE VIEW happy_rows AS SELECT id, label FROM everything WHERE feeling = 'happy';
  CREATE FUNCTION double_it(x int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT x * 2';
  SELECT lo_from_bytea(0, convert_to(repeat('large object ', 5000), 'UTF8'));
  CREATE SCHEMA "Odd Schema";
  CREATE TABLE "Odd Schema"."Mixed Case" ("Key" int PRIMARY KEY, "Value" text);
  INSERT INTO "Odd Schema"."Mixed Case" SELECT g, 'v' || g FROM generate_series(1, 50) g;
`;
