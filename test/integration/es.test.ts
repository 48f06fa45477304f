/**
 * Elasticsearch end to end: `capsule es` against the wire-level fake (test/fakes/elasticsearch.ts) in its 7.x, 8.x
 * and OpenSearch flavours, with real S3 (radosgw). Round trips compared document by document (raw `_source`,
 * routing), mapping by mapping and alias by alias; selection, refusal and replacement of existing indices, renames,
 * 429s, lost documents, a corrupt artifact, every cursor closed after a failure, and one clear line per mistake.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { gunzipSync } from "node:zlib";
import { after, before, describe, test } from "node:test";
import { openBackupStore } from "../../src/runtime/bucket.js";
import type { BackupStore } from "../../src/storage/backup-store.js";
import { layout } from "../../src/storage/layout.js";
import type { Statefile } from "../../src/domain/statefile.js";
import { createBucket, s3Env, testServers, uniqueName, type TestServers } from "../harness/index.js";
import { capsule } from "../support/cli.js";
import {
  assertSameIndex,
  esEnv,
  Fakes,
  seedCorpus,
  type Corpus,
  type FakeElasticsearch,
  type Flavour,
} from "../support/es.js";
import { objectsOf, prefixOf } from "../support/raw-bucket.js";

const exec = promisify(execFile);
const USER_INDICES = ["blobs", "logs-2024", "products", "unicode"];

describe("capsule es", () => {
  let servers: TestServers;
  let bucket: string;
  let store: BackupStore;
  const fakes = new Fakes();

  before(async () => {
    servers = await testServers();
    bucket = `s3://${uniqueName("es")}/capsule`;
    await createBucket(servers.s3, new URL(bucket).host);
    store = openBackupStore({ bucket }, s3Env(servers.s3));
  });

  after(async () => {
    await fakes.closeAll();
  });

  function env(fake: FakeElasticsearch, extra: Record<string, string> = {}): Record<string, string> {
    return { ...s3Env(servers.s3), CAPSULE_BUCKET: bucket, ...esEnv(fake), ...extra };
  }

  async function create(fake: FakeElasticsearch, cluster: string, args: string[] = [], extra = {}) {
    const r = await capsule(["es", "--create", "--cluster", cluster, ...args], env(fake, extra));
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
  }

  async function restore(fake: FakeElasticsearch, id: string, cluster: string, args: string[] = []) {
    return capsule(["es", "--restore", "--yes", "--id", id, "--cluster", cluster, ...args], env(fake));
  }

  async function statefile(id: string, cluster: string): Promise<Statefile> {
    const entry = await store.get({ cluster, engine: "elasticsearch", backupId: id });
    assert.ok(entry.statefile);
    return entry.statefile;
  }

  function searches(fake: FakeElasticsearch): number {
    return fake.requests.filter((r) => r === "POST /_search" || r === "POST /_search/scroll").length;
  }

  const flavours: Array<{ flavour: Flavour; version?: string; method: "pit" | "scroll" }> = [
    { flavour: "7", method: "pit" },
    { flavour: "8", method: "pit" },
    { flavour: "opensearch", method: "scroll" },
    { flavour: "7", version: "7.10.2", method: "scroll" },
  ];
  for (const f of flavours) {
    const label = f.flavour === "opensearch" ? "OpenSearch" : `Elasticsearch ${f.version ?? f.flavour}`;
    test(`GIVEN ${label} with mappings, analyzers, aliases, routing, unicode, big and large documents WHEN backed up and restored into an empty cluster THEN everything is back, system and hidden indices are not (${f.method})`, async () => {
      const source = await fakes.start(f.flavour, f.version ? { version: f.version } : {});
      const corpus: Corpus = seedCorpus(source);
      const cluster = uniqueName(`rt-${f.flavour}`);
      const id = await create(source, cluster);

      const state = await statefile(id, cluster);
      assert.equal(state.status, "succeeded");
      assert.deepEqual(
        {
          name: state.artifact?.name,
          format: state.artifact?.format,
          compression: state.artifact?.compression,
        },
        { name: "indices.ndjson.gz", format: "es-ndjson", compression: "gzip" },
      );
      const fingerprint = state.fingerprint as { method: string; indices: Record<string, { docs: number }> };
      assert.equal(fingerprint.method, f.method);
      assert.deepEqual(
        fingerprint.indices,
        Object.fromEntries(Object.entries(corpus.counts).map(([k, v]) => [k, { docs: v }])),
      );
      assert.deepEqual(state.source.indices, USER_INDICES);
      assert.ok(searches(source) > 20, `20,000 documents take many pages (${searches(source)} requests)`);
      assert.deepEqual(source.openContexts, { pit: 0, scroll: 0 }, "every PIT/scroll is closed");

      const target = await fakes.start(f.flavour, f.version ? { version: f.version } : {});
      const r = await restore(target, id, cluster);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /4 indices, 21547 documents; document counts match the backup/);
      for (const name of USER_INDICES) assertSameIndex(source, target, name);
      assert.equal(target.index(".kibana_1"), undefined);
      assert.equal(target.index("audit-hidden"), undefined);
      assert.equal((await statefile(id, cluster)).restores[0]?.result, "succeeded");
    });
  }

  test("GIVEN an Elasticsearch 8 backup WHEN restored into OpenSearch, and an OpenSearch backup into Elasticsearch 8 THEN settings the other distribution refuses are left out and the data is back", async () => {
    const es = await fakes.start("8");
    const os = await fakes.start("opensearch");
    seedCorpus(es, { products: 500 });
    seedCorpus(os, { products: 500 });
    const cluster = uniqueName("cross");
    const fromEs = await create(es, cluster, ["--indices", "products,logs-2024"]);
    const fromOs = await create(os, cluster, ["--indices", "products,logs-2024"]);

    const osTarget = await fakes.start("opensearch");
    const a = await restore(osTarget, fromEs, cluster);
    assert.equal(a.code, 0, a.stderr);
    assertSameIndex(es, osTarget, "products");
    const esTarget = await fakes.start("8");
    const b = await restore(esTarget, fromOs, cluster);
    assert.equal(b.code, 0, b.stderr);
    assertSameIndex(os, esTarget, "logs-2024");
  });

  test("GIVEN --indices WHEN backing up and restoring THEN only the chosen indices are exported and restored, and a system index can be named", async () => {
    const source = await fakes.start("8");
    seedCorpus(source, { products: 100 });
    const cluster = uniqueName("select");
    const id = await create(source, cluster, ["--indices", "prod*,unicode,.kibana_1,-blobs"]);
    assert.deepEqual((await statefile(id, cluster)).source.indices, [".kibana_1", "products", "unicode"]);

    const target = await fakes.start("8");
    const r = await restore(target, id, cluster, ["--indices", "unicode"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([...target.indices.keys()], ["unicode"]);
    assertSameIndex(source, target, "unicode");

    const typo = await restore(target, id, cluster, ["--indices", "logs-2024"]);
    assert.equal(typo.code, 1);
    assert.match(typo.stderr, /not in this backup: logs-2024 \(it holds \.kibana_1, products, unicode\)/);
    const missing = await capsule(["es", "--create", "--cluster", cluster, "--indices", "nope"], env(source));
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no index named nope/);
  });

  test("GIVEN an index that exists on the target WHEN restoring THEN it is refused and untouched without --replace, and replaced with it", async () => {
    const source = await fakes.start("8");
    seedCorpus(source, { products: 300 });
    const cluster = uniqueName("exists");
    const id = await create(source, cluster, ["--indices", "products,unicode"]);

    const target = await fakes.start("8");
    target.seed("products", { mappings: { properties: { other: { type: "keyword" } } } }, [
      { id: "local-only", source: { other: "keep me?" } },
    ]);
    const refused = await restore(target, id, cluster);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /1 index already exists: products; pass --replace/);
    assert.equal(target.index("products")?.docs.size, 1, "the existing index is untouched");
    assert.equal(target.index("unicode"), undefined, "nothing was restored");

    const replaced = await restore(target, id, cluster, ["--replace"]);
    assert.equal(replaced.code, 0, replaced.stderr);
    assertSameIndex(source, target, "products");
    assert.equal(target.index("products")?.docs.has("local-only"), false);
    assert.equal(
      [...target.indices.keys()].filter((n) => n.includes("capsule-probe")).length,
      0,
      "the probe index is gone",
    );
  });

  test("GIVEN --rename-pattern WHEN restoring into the source cluster THEN copies appear beside the originals, which are untouched, and aliases are not moved", async () => {
    const source = await fakes.start("7");
    seedCorpus(source, { products: 200 });
    const cluster = uniqueName("rename");
    const id = await create(source, cluster, ["--indices", "products,logs-2024"]);
    const r = await restore(source, id, cluster, [
      "--rename-pattern",
      "^(.+)$",
      "--rename-replacement",
      "restored-$1",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assertSameIndex(source, source, "products", { as: "restored-products", aliases: false });
    assertSameIndex(source, source, "logs-2024", { as: "restored-logs-2024", aliases: false });
    assert.equal(source.index("restored-products")?.aliases.size, 0);
    assert.deepEqual([...(source.index("products")?.aliases.keys() ?? [])], ["catalog", "cheap"]);
    assert.match(r.stderr, /aliases catalog, cheap were not added to the renamed restored-products/);

    const bad = await restore(source, id, cluster, [
      "--rename-pattern",
      "^",
      "--rename-replacement",
      "Upper-",
    ]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /cannot restore logs-2024 as "Upper-logs-2024": the name must be lowercase/);
    const half = await restore(source, id, cluster, ["--rename-pattern", "x"]);
    assert.notEqual(half.code, 0);
    assert.match(half.stdout + half.stderr, /--rename-pattern and --rename-replacement go together/);
  });

  test("GIVEN a cluster that answers 429 for a while, to whole requests and to single items WHEN restoring THEN the rejected work is retried and the restore succeeds", async () => {
    const source = await fakes.start("8");
    seedCorpus(source, { products: 12_000 });
    const cluster = uniqueName("busy");
    const id = await create(source, cluster, ["--indices", "products"]);
    const target = await fakes.start("8");
    target.rejectBulkRequests(3);
    target.rejectBulkItems({
      match: (_index, docId) => docId.endsWith("7"),
      status: 429,
      type: "es_rejected_execution_exception",
      times: 2,
    });
    const r = await restore(target, id, cluster);
    assert.equal(r.code, 0, r.stderr);
    assertSameIndex(source, target, "products");
    // 3 batches of 5000, 3 whole requests refused, and each batch sent twice more for its rejected items.
    const bulks = target.requests.filter((req) => req === "POST /_bulk").length;
    assert.ok(bulks >= 12, `retried bulk requests (${bulks})`);
  });

  test("GIVEN a search that skips a document its total counts WHEN backing up THEN the export fails on the count and closes its point in time", async () => {
    const source = await fakes.start("8");
    seedCorpus(source, { products: 3000 });
    source.loseInPaging("p-1234");
    const cluster = uniqueName("skew");
    const r = await capsule(["es", "--create", "--cluster", cluster], env(source));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /index products: exported 2999 documents, but the same point in time counts 3000/);
    assert.deepEqual(source.openContexts, { pit: 0, scroll: 0 });
    const [entry] = await store.list({ cluster, engine: "elasticsearch" });
    assert.equal(entry?.state, "failed");
  });

  test("GIVEN documents the target rejects for good WHEN restoring THEN the restore fails with the count and the reason, and records the failure", async () => {
    const source = await fakes.start("8");
    seedCorpus(source, { products: 2000 });
    const cluster = uniqueName("lost");
    const id = await create(source, cluster, ["--indices", "products"]);
    const target = await fakes.start("8");
    target.rejectBulkItems({
      match: (_index, docId) => ["p-5", "p-500", "p-1999"].includes(docId),
      status: 400,
      type: "mapper_parsing_exception",
    });
    const r = await restore(target, id, cluster);
    assert.equal(r.code, 1);
    const lines = r.stderr
      .trim()
      .split("\n")
      .filter((l) => l.startsWith("capsule:"));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(
      lines[0]!,
      /index products: 3 of 2000 documents were rejected: 3 × mapper_parsing_exception \(e\.g\. failed to parse field/,
    );
    assert.match(lines[0]!, /products is incomplete: delete it, or restore again with --replace/);
    const state = await statefile(id, cluster);
    assert.equal(state.restores.at(-1)?.result, "failed");
    assert.equal(target.index("products")?.aliases.size, 0, "no alias points at an incomplete index");
  });

  test("GIVEN a flipped byte in the stored artifact WHEN restoring THEN capsule refuses before it talks to the target", async () => {
    const source = await fakes.start("8");
    seedCorpus(source, { products: 500 });
    const cluster = uniqueName("corrupt");
    const id = await create(source, cluster);
    const key = layout.artifactKey(
      prefixOf(store),
      { cluster, engine: "elasticsearch", backupId: id },
      "indices.ndjson.gz",
    );
    const bytes = Buffer.concat(await (await objectsOf(store).get(key)).toArray());
    const middle = Math.floor(bytes.length / 2);
    bytes[middle] = bytes[middle]! ^ 0x01;
    await objectsOf(store).put(key, bytes);

    const target = await fakes.start("8");
    const r = await restore(target, id, cluster);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /checksum mismatch/);
    assert.equal(
      r.stderr
        .trim()
        .split("\n")
        .filter((l) => l.startsWith("capsule:")).length,
      1,
    );
    assert.equal(target.indices.size, 0);
    assert.deepEqual(target.requests, []);
  });

  for (const flavour of ["8", "opensearch"] as const) {
    test(`GIVEN ${flavour === "8" ? "an Elasticsearch 8" : "an OpenSearch"} cluster that fails mid-export WHEN backing up THEN the run fails and its ${flavour === "8" ? "point in time is" : "scroll is"} closed`, async () => {
      const source = await fakes.start(flavour);
      seedCorpus(source, { products: 5000 });
      source.failSearchAfter(3);
      const cluster = uniqueName("midway");
      const r = await capsule(["es", "--create", "--cluster", cluster], env(source));
      assert.equal(r.code, 1);
      assert.match(r.stderr, /500 node_not_connected_exception: \[fake-node-1\]/);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.deepEqual(source.openContexts, { pit: 0, scroll: 0 });
      assert.ok(source.requests.includes(flavour === "8" ? "DELETE /_pit" : "DELETE /_search/scroll"));
      const [entry] = await store.list({ cluster, engine: "elasticsearch" });
      assert.equal(entry?.state, "failed");
    });
  }

  test("GIVEN basic auth or an API key WHEN they are right THEN backup and restore work, and no secret is stored or printed", async () => {
    const source = await fakes.start("8", {
      user: { name: "elastic", password: "es-secret-pw-1" },
      apiKey: "a2V5LWlkOmtleS1zZWNyZXQtMg==",
    });
    seedCorpus(source, { products: 50 });
    const cluster = uniqueName("auth");
    const id = await create(source, cluster, ["--indices", "products"], {
      CNVRG_ES_USER: "elastic",
      CNVRG_ES_PASS: "es-secret-pw-1",
    });
    const byKey = await create(source, cluster, ["--indices", "unicode"], {
      ES_API_KEY: "a2V5LWlkOmtleS1zZWNyZXQtMg==",
    });
    const state = JSON.stringify([await statefile(id, cluster), await statefile(byKey, cluster)]);
    assert.doesNotMatch(state, /es-secret-pw-1|a2V5LWlkOmtleS1zZWNyZXQtMg|ZWxhc3RpYzplcy1zZWNyZXQ/);

    const target = await fakes.start("opensearch", { user: { name: "admin", password: "os-secret-pw-3" } });
    const r = await capsule(["es", "--restore", "--yes", "--id", id, "--cluster", cluster], {
      ...env(target),
      ES_USER: "admin",
      ES_PASSWORD: "os-secret-pw-3",
    });
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, /secret-pw/);
    assertSameIndex(source, target, "products");
  });

  describe("one clear line for each mistake", () => {
    let es: FakeElasticsearch;
    let os: FakeElasticsearch;
    before(async () => {
      es = await fakes.start("8", { user: { name: "elastic", password: "the-real-pw-123" } });
      os = await fakes.start("opensearch", { user: { name: "admin", password: "the-real-pw-123" } });
    });
    const cases: Array<{
      name: string;
      args: string[];
      env: () => Record<string, string>;
      message: RegExp;
      code?: number;
    }> = [
      {
        name: "a wrong password (Elasticsearch)",
        args: ["es", "--create"],
        env: () => env(es, { ES_USER: "elastic", ES_PASSWORD: "wrong-password-123" }),
        message:
          /http:\/\/127\.0\.0\.1:\d+: authentication failed for user "elastic" \(401 security_exception: unable to authenticate user \[elastic\]/,
      },
      {
        name: "a wrong password (OpenSearch, plain-text 401)",
        args: ["es", "--create"],
        env: () => env(os, { ES_USER: "admin", ES_PASSWORD: "wrong-password-123" }),
        message: /authentication failed for user "admin" \(401 error: Unauthorized\)/,
      },
      {
        name: "missing credentials",
        args: ["es", "--create"],
        env: () => env(es),
        message: /the cluster requires authentication: set ES_USER and ES_PASSWORD, or ES_API_KEY/,
      },
      {
        name: "a wrong API key",
        args: ["es", "--create"],
        env: () => env(es, { ES_API_KEY: "wrong-password-123" }),
        message: /authentication failed for the API key/,
      },
      {
        name: "an unreachable URL",
        args: ["es", "--create", "--url", "http://127.0.0.1:9"],
        env: () => env(es),
        message: /http:\/\/127\.0\.0\.1:9: cannot connect \(ECONNREFUSED\)/,
      },
      {
        name: "credentials in --url",
        args: ["es", "--create", "--url", "http://elastic:the-real-pw-123@127.0.0.1:9200"],
        env: () => env(es),
        message: /the URL must not carry credentials: set ES_USER and ES_PASSWORD/,
        code: 1,
      },
      {
        name: "an unknown --id",
        args: ["es", "--restore", "--yes", "--id", "elasticsearch-20200101T000000Z-000000"],
        env: () => env(es),
        message: /no backup elasticsearch-20200101T000000Z-000000 for cluster local/,
      },
    ];
    for (const c of cases) {
      test(`GIVEN ${c.name} THEN capsule exits non-zero with one line that says so, and no secret`, async () => {
        const result = await capsule(c.args, c.env());
        assert.notEqual(result.code, 0);
        assert.match(result.stderr + result.stdout, c.message);
        if (result.code === 1 && c.code === undefined) {
          assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
        }
        assert.doesNotMatch(result.stderr + result.stdout, /wrong-password-123|the-real-pw-123/);
      });
    }
  });

  test("GIVEN a cluster with a self-signed certificate THEN it is refused by default, works with --ca-cert, and with --insecure-skip-tls-verify after a warning", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "capsule-es-tls-"));
    const keyFile = path.join(dir, "key.pem");
    const certFile = path.join(dir, "cert.pem");
    await exec("openssl", [
      ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"],
      ...["-keyout", keyFile, "-out", certFile, "-subj", "/CN=127.0.0.1"],
      ...["-addext", "subjectAltName=IP:127.0.0.1"],
    ]);
    const tls = { key: await readFile(keyFile, "utf8"), cert: await readFile(certFile, "utf8") };
    const source = await fakes.start("8", { tls });
    seedCorpus(source, { products: 10 });
    const cluster = uniqueName("tls");

    const refused = await capsule(["es", "--create", "--cluster", cluster], env(source));
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /TLS verification failed \(DEPTH_ZERO_SELF_SIGNED_CERT\): pass --ca-cert FILE/,
    );
    await create(source, cluster, ["--ca-cert", certFile]);
    const insecure = await capsule(
      ["es", "--create", "--cluster", cluster, "--insecure-skip-tls-verify"],
      env(source),
    );
    assert.equal(insecure.code, 0, insecure.stderr);
    assert.match(
      insecure.stderr,
      /warning: --insecure-skip-tls-verify: the certificate of https:\/\/127\.0\.0\.1:\d+ is not checked/,
    );
  });

  test("GIVEN a backup WHEN downloaded THEN it is the stored gzip NDJSON, and the ADR's jq/curl recipe loads an index without capsule", async () => {
    const source = await fakes.start("8");
    seedCorpus(source, { products: 100 });
    const cluster = uniqueName("download");
    const id = await create(source, cluster);
    const dir = await mkdtemp(path.join(tmpdir(), "capsule-es-dl-"));
    const file = path.join(dir, "indices.ndjson.gz");
    const dl = await capsule(
      ["es", "--download", "--id", id, "--cluster", cluster, "--to", file],
      env(source),
    );
    assert.equal(dl.code, 0, dl.stderr);
    const bytes = await readFile(file);
    assert.equal(bytes.length, (await statefile(id, cluster)).artifact?.sizeBytes);
    const lines = gunzipSync(bytes).toString("utf8").trimEnd().split("\n");
    const first = JSON.parse(lines[0]!) as { capsule: string; format: string; source: { version: string } };
    assert.deepEqual([first.capsule, first.format, first.source.version], ["header", "es-ndjson", "8.13.4"]);
    assert.deepEqual(JSON.parse(lines.at(-1)!), { capsule: "end", indices: 4, docs: 100 + 1500 + 7 + 40 });

    // The recipe of docs/adr/0006, verbatim but for the variables.
    const target = await fakes.start("8");
    const script = path.join(dir, "load.sh");
    await writeFile(
      script,
      `set -euo pipefail
ES=${target.url}; FILE=${file}; INDEX=logs-2024
zcat "$FILE" | jq -c --arg i "$INDEX" 'select(.capsule == "index" and .name == $i) | {settings, mappings}' |
  curl -sSf -X PUT "$ES/$INDEX" -H 'Content-Type: application/json' --data-binary @- >/dev/null
zcat "$FILE" | jq -c --arg i "$INDEX" 'select(._index == $i)
    | {index: ({_index: ._index, _id: ._id} + (if ._routing then {routing: ._routing} else {} end))}, ._source' |
  split -l 2000 --filter "curl -sSf -X POST '$ES/_bulk' -H 'Content-Type: application/x-ndjson' --data-binary @- >/dev/null"
zcat "$FILE" | jq -c --arg i "$INDEX" 'select(.capsule == "index" and .name == $i)
    | {actions: [.aliases | to_entries[] | {add: ({index: $i, alias: .key} + .value)}]}' |
  curl -sSf -X POST "$ES/_aliases" -H 'Content-Type: application/json' --data-binary @- >/dev/null
`,
    );
    await exec("bash", [script]);
    await exec("curl", ["-sSf", "-X", "POST", `${target.url}/logs-2024/_refresh`]);
    assertSameIndex(source, target, "logs-2024");
  });
});
