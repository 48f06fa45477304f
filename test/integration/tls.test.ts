/**
 * TLS to the databases, verified by default: a real redis-server with TLS switched on at run time, a throwaway CA
 * made with openssl, and a second CA that did not sign the server's certificate.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
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
