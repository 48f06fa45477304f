/**
 * TLS to the databases, verified by default: a real redis-server with TLS switched on at run time, a throwaway CA
 * made with openssl, and a second CA that did not sign the server's certificate.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmod, chown, mkdtemp, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import {
  createBucket,
  freePort,
  s3Env,
  testServers,
  uniqueName,
  type TestServers,
} from "../harness/index.js";
import type { RedisServer } from "../harness/redis.js";
import { capsule } from "../support/cli.js";
import { call, dumpAll, dumpDifferences, fillEveryType, startTargetRedis } from "../support/redis.js";
import { databaseDigest, pgEnv, sql } from "../support/pg.js";

const exec = promisify(execFile);

/** A CA and a certificate it signed for 127.0.0.1 (IP SAN), all in `dir`. */
async function makeCa(dir: string, name: string): Promise<{ ca: string; cert: string; key: string }> {
  const file = (suffix: string) => path.join(dir, `${name}-${suffix}`);
  const openssl = (...args: string[]) => exec("openssl", args);
  await openssl(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "1",
    "-subj",
    `/CN=${name} test CA`,
    "-keyout",
    file("ca.key"),
    "-out",
    file("ca.pem"),
  );
  await openssl(
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=127.0.0.1",
    "-keyout",
    file("server.key"),
    "-out",
    file("server.csr"),
  );
  await writeFile(file("ext.cnf"), "subjectAltName = IP:127.0.0.1\n");
  await openssl(
    "x509",
    "-req",
    "-in",
    file("server.csr"),
    "-CA",
    file("ca.pem"),
    "-CAkey",
    file("ca.key"),
    "-CAcreateserial",
    "-days",
    "1",
    "-extfile",
    file("ext.cnf"),
    "-out",
    file("server.pem"),
  );
  return { ca: file("ca.pem"), cert: file("server.pem"), key: file("server.key") };
}

function errorLines(stderr: string): string[] {
  return stderr.split("\n").filter((line) => line.startsWith("capsule: "));
}

describe("TLS to Redis", () => {
  let servers: TestServers;
  let bucket: string;
  let redis: RedisServer;
  let tlsPort: number;
  let good: { ca: string; cert: string; key: string };
  let wrong: { ca: string };

  before(async () => {
    servers = await testServers();
    bucket = `s3://${uniqueName("tls")}/capsule`;
    await createBucket(servers.s3, new URL(bucket).host);
    const dir = await mkdtemp(path.join(tmpdir(), "capsule-tls-"));
    [good, wrong] = await Promise.all([makeCa(dir, "good"), makeCa(dir, "wrong")]);
    redis = await startTargetRedis();
    tlsPort = await freePort();
    const plain = { host: redis.host, port: redis.port };
    await call(plain, "CONFIG", "SET", "tls-cert-file", good.cert, "tls-key-file", good.key);
    await call(plain, "CONFIG", "SET", "tls-ca-cert-file", good.ca, "tls-auth-clients", "no");
    await call(plain, "CONFIG", "SET", "tls-port", String(tlsPort));
    await fillEveryType(plain);
  });

  after(async () => {
    await redis?.stop();
  });

  const env = (extra: Record<string, string> = {}) => ({
    ...s3Env(servers.s3),
    CAPSULE_BUCKET: bucket,
    REDIS_HOST: "127.0.0.1",
    REDIS_PORT: String(tlsPort),
    ...extra,
  });

  test("GIVEN a TLS-only port and the CA that signed it WHEN backed up and restored over TLS THEN every key comes back", async () => {
    const before = await dumpAll({ host: redis.host, port: redis.port });
    const created = await capsule(["redis", "--create", "--cluster", "tls", "--ca-cert", good.ca], env());
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stderr, /backed up rediss:\/\/127\.0\.0\.1:\d+/);
    const id = created.stdout.trim();
    await call({ host: redis.host, port: redis.port }, "FLUSHALL");
    const restored = await capsule(
      ["redis", "--restore", "--yes", "--id", id, "--cluster", "tls", "--listen-host", "127.0.0.1"],
      env({ REDIS_TLS: "true", REDIS_CA_CERT: good.ca }),
    );
    assert.equal(restored.code, 0, restored.stderr);
    assert.deepEqual(dumpDifferences(before, await dumpAll({ host: redis.host, port: redis.port })), []);
  });

  test("GIVEN --tls with no CA, or a CA that did not sign the certificate WHEN creating THEN one line says the certificate is not trusted and no data is read", async () => {
    for (const args of [["--tls"], ["--ca-cert", wrong.ca]]) {
      const r = await capsule(["redis", "--create", "--cluster", "tls-refused", ...args], env());
      assert.equal(r.code, 1, r.stderr);
      const lines = errorLines(r.stderr);
      assert.equal(lines.length, 1, r.stderr);
      assert.match(
        lines[0]!,
        /rediss:\/\/127\.0\.0\.1:\d+: TLS certificate not trusted \([A-Z_]+\): pass --ca-cert with the CA that signed it/,
      );
    }
    // The run protocol records the failed attempts; neither holds data.
    const listed = await capsule(["redis", "--list", "--cluster", "tls-refused", "-o", "json"], env());
    const runs = JSON.parse(listed.stdout) as Array<{ status: string; phase: string; artifact?: unknown }>;
    assert.deepEqual(
      runs.map((r) => [r.status, r.phase, r.artifact]),
      [
        ["failed", "connecting", undefined],
        ["failed", "connecting", undefined],
      ],
    );
  });

  test("GIVEN --insecure-skip-tls-verify WHEN creating THEN it connects and warns that the certificate is not checked", async () => {
    const r = await capsule(["redis", "--create", "--cluster", "tls", "--insecure-skip-tls-verify"], env());
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /warning: --insecure-skip-tls-verify: the certificate of rediss:\/\/127\.0\.0\.1:\d+ is not checked/,
    );
  });
});

/**
 * The harness' PostgreSQL gets TLS switched on by a reload for these tests (plain connections keep working, and
 * capsule's own connections say PGSSLMODE explicitly), then off again.
 */
describe("TLS to PostgreSQL", () => {
  let servers: TestServers;
  let bucket: string;
  let good: { ca: string; cert: string; key: string };
  let wrong: { ca: string };
  let database: string;

  before(async () => {
    servers = await testServers();
    bucket = `s3://${uniqueName("pgtls")}/capsule`;
    await createBucket(servers.s3, new URL(bucket).host);
    const dir = await mkdtemp(path.join(tmpdir(), "capsule-pgtls-"));
    [good, wrong] = await Promise.all([makeCa(dir, "good"), makeCa(dir, "wrong")]);
    // The server reads its key as its own user, and only from a file no one else may read.
    const dataDir = String((await sql(servers, "postgres", "SHOW data_directory"))[0]!["data_directory"]);
    const owner = await stat(dataDir);
    await chmod(dir, 0o755);
    for (const file of [good.cert, good.key]) await chown(file, owner.uid, owner.gid);
    await chmod(good.key, 0o600);
    await sql(servers, "postgres", `ALTER SYSTEM SET ssl_cert_file = '${good.cert}'`);
    await sql(servers, "postgres", `ALTER SYSTEM SET ssl_key_file = '${good.key}'`);
    await sql(servers, "postgres", "ALTER SYSTEM SET ssl = on");
    await sql(servers, "postgres", "SELECT pg_reload_conf()");
    database = uniqueName("tls").replace(/-/g, "_");
    await sql(servers, "postgres", `CREATE DATABASE ${database}`);
    await sql(
      servers,
      database,
      "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS s FROM generate_series(1, 3000) g",
    );
  });

  after(async () => {
    await sql(servers, "postgres", "ALTER SYSTEM RESET ssl").catch(() => undefined);
    await sql(servers, "postgres", "ALTER SYSTEM RESET ssl_cert_file").catch(() => undefined);
    await sql(servers, "postgres", "ALTER SYSTEM RESET ssl_key_file").catch(() => undefined);
    await sql(servers, "postgres", "SELECT pg_reload_conf()").catch(() => undefined);
  });

  const env = (extra: Record<string, string> = {}) => ({
    ...s3Env(servers.s3),
    ...pgEnv(servers, database),
    PGHOST: "127.0.0.1",
    CAPSULE_BUCKET: bucket,
    ...extra,
  });

  test("GIVEN --sslrootcert with the CA that signed the server WHEN backed up and restored THEN both run over verified TLS (verify-full by default) and the data comes back", async () => {
    const digest = await databaseDigest(servers, database);
    const created = await capsule(["pg", "--create", "--cluster", "tls", "--sslrootcert", good.ca], env());
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stderr, /backed up postgresql:\/\/.*\?sslmode=verify-full/);
    await sql(servers, database, "DELETE FROM t WHERE id < 100");
    const restored = await capsule(
      ["pg", "--restore", "--yes", "--id", created.stdout.trim(), "--cluster", "tls"],
      env({ PGSSLMODE: "verify-full", PGSSLROOTCERT: good.ca }),
    );
    assert.equal(restored.code, 0, restored.stderr);
    assert.deepEqual(await databaseDigest(servers, database), digest);
  });

  test("GIVEN a CA that did not sign the server, or an unverified mode without the opt-out WHEN creating THEN each is one line, and --insecure-skip-tls-verify connects with a warning", async () => {
    const wrongCa = await capsule(["pg", "--create", "--cluster", "tls", "--sslrootcert", wrong.ca], env());
    assert.equal(wrongCa.code, 1);
    assert.deepEqual(
      errorLines(wrongCa.stderr).map((l) => l.replace(/\(\w+\)/, "(CODE)")),
      [
        `capsule: CAPSULE_DATABASE_ERROR: postgresql://${servers.pg.user}@127.0.0.1:${servers.pg.port}/${database}?sslmode=verify-full: ` +
          "TLS certificate not trusted (CODE): pass --sslrootcert with the CA that signed it",
      ],
    );
    for (const [args, message] of [
      [["--sslmode", "require"], /--sslmode require does not verify the server/],
      [
        ["--sslmode", "prefer"],
        /--sslmode must be disable, require, verify-ca or verify-full \(got "prefer"\)/,
      ],
      [["--sslmode", "verify-full"], /--sslmode verify-full needs the CA: --sslrootcert FILE/],
    ] as const) {
      const r = await capsule(["pg", "--create", "--cluster", "tls", ...args], env());
      assert.equal(r.code, 2);
      assert.match(r.stderr, message);
    }
    const insecure = await capsule(
      ["pg", "--create", "--cluster", "tls", "--insecure-skip-tls-verify"],
      env(),
    );
    assert.equal(insecure.code, 0, insecure.stderr);
    assert.match(
      insecure.stderr,
      /warning: --insecure-skip-tls-verify: the certificate of postgresql:.*\?sslmode=require is not checked/,
    );
  });
});
