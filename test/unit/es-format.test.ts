/**
 * The pure parts of the Elasticsearch engine: raw JSON spans (documents are never re-encoded), the NDJSON artifact
 * lines, settings a new index must not carry, index selection and renaming, line splitting, error bodies.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { flagOf } from "../../src/commands/base-command.js";
import { FieldError } from "../../src/domain/errors.js";
import { errorOf } from "../../src/engines/elasticsearch/client.js";
import { esConnectionFrom } from "../../src/engines/elasticsearch/connection.js";
import {
  creationSettings,
  docLine,
  flattenSettings,
  parseLine,
  portableSettings,
} from "../../src/engines/elasticsearch/format.js";
import {
  invalidIndexName,
  parsePatterns,
  parseRename,
  renamed,
  selectIndices,
} from "../../src/engines/elasticsearch/indices.js";
import { objectMembers, searchPage } from "../../src/engines/elasticsearch/raw-json.js";
import { readLines } from "../../src/engines/elasticsearch/restore.js";
import { redact } from "../../src/redact.js";

describe("raw JSON", () => {
  test("GIVEN a search page with big integers, escapes and pretty-printed sources THEN _source and sort come back byte for byte", () => {
    const source1 = '{"n":12345678901234567890,"s":"a\\"}b\\\\","arr":[{"x":"]"}]}';
    const source2 = '{\n  "pretty" : true\n}';
    const body =
      `{"pit_id":"abc==","took":1,"hits":{"total":{"value":2,"relation":"eq"},"max_score":null,"hits":[` +
      `{"_index":"i","_type":"_doc","_id":"1","_score":null,"_routing":"r\\u00e9","_source":${source1},"sort":[0]},` +
      ` { "_index" : "i", "_id" : "\\"2\\"", "_source" : ${source2}, "sort" : [ 4294967296 ] } ]}}`;
    const page = searchPage(body);
    assert.equal(page.pitId, "abc==");
    assert.deepEqual(page.total, { value: 2, relation: "eq" });
    assert.deepEqual(page.hits, [
      { index: "i", id: "1", routing: "ré", source: source1, sort: "[0]" },
      { index: "i", id: '"2"', source: source2, sort: "[ 4294967296 ]" },
    ]);
  });

  test("GIVEN an old server's integer hits.total and no hits THEN the page is empty with that total", () => {
    assert.deepEqual(searchPage('{"_scroll_id":"s","hits":{"total":0,"hits":[]}}'), {
      hits: [],
      scrollId: "s",
      total: { value: 0, relation: "eq" },
    });
  });

  test("GIVEN broken JSON THEN a clear error, not a hang", () => {
    assert.throws(() => objectMembers('{"a":"unterminated'), /unterminated string/);
    assert.throws(() => objectMembers('{"a":{"b":1}'), /unterminated object|expected/);
  });
});

describe("artifact lines", () => {
  test("GIVEN a hit THEN its document line parses back to the same raw id, routing and source", () => {
    const line = docLine(JSON.stringify("logs"), {
      index: "logs",
      id: 'a"b',
      routing: "t1",
      source: '{\r\n"big":12345678901234567890}',
    });
    assert.ok(line.endsWith("\n") && line.indexOf("\n") === line.length - 1, "one line");
    assert.deepEqual(parseLine(line.trimEnd(), 7), {
      capsule: "doc",
      index: "logs",
      rawId: '"a\\"b"',
      rawRouting: '"t1"',
      rawSource: '{  "big":12345678901234567890}',
    });
  });

  test("GIVEN damaged lines THEN the error names the line", () => {
    assert.throws(
      () => parseLine('{"_index":"x","_id":"1"}', 3),
      /line 3: a document line needs _index, _id and _source/,
    );
    assert.throws(() => parseLine("garbage", 4), /line 4: neither a document nor a capsule record/);
    assert.throws(() => parseLine('{"capsule":"nope"}', 5), /line 5: unknown record "nope"/);
    assert.throws(() => parseLine('{"capsule":', 6), /line 6: invalid JSON/);
  });

  test("GIVEN settings as Elasticsearch returns them THEN identity and history are dropped and blocks deferred", () => {
    const flat = flattenSettings({
      index: {
        uuid: "u",
        creation_date: "1",
        provided_name: "x",
        version: { created: "8130499", upgraded: "8130499" },
        routing: {
          allocation: { initial_recovery: { _id: "n" }, include: { _tier_preference: "data_content" } },
        },
        resize: { source: { name: "a", uuid: "b" } },
        number_of_shards: "2",
        analysis: { analyzer: { f: { type: "custom", filter: ["lowercase", "asciifolding"] } } },
        blocks: { write: "true" },
      },
    });
    const portable = portableSettings(flat);
    assert.deepEqual(portable, {
      "index.analysis.analyzer.f.filter": ["lowercase", "asciifolding"],
      "index.analysis.analyzer.f.type": "custom",
      "index.blocks.write": "true",
      "index.number_of_shards": "2",
      "index.routing.allocation.include._tier_preference": "data_content",
    });
    assert.deepEqual(creationSettings(portable).deferred, { "index.blocks.write": "true" });
    assert.equal(creationSettings(portable).create["index.blocks.write"], undefined);
  });
});

describe("index selection", () => {
  const all = [
    { name: "logs-1" },
    { name: "logs-2" },
    { name: "metrics" },
    { name: ".kibana_1" },
    { name: "audit", hidden: true },
  ];
  const cases: Array<[string | undefined, string[]]> = [
    [undefined, ["logs-1", "logs-2", "metrics"]],
    ["*", ["logs-1", "logs-2", "metrics"]],
    ["logs-*", ["logs-1", "logs-2"]],
    ["*,-logs-2", ["logs-1", "metrics"]],
    ["-metrics", ["logs-1", "logs-2"]],
    ["*,-logs-*,logs-2", ["logs-2", "metrics"]],
    [".kibana*", [".kibana_1"]],
    ["audit,metrics", ["audit", "metrics"]],
    ["logs-?", ["logs-1", "logs-2"]],
  ];
  for (const [patterns, expected] of cases) {
    test(`GIVEN --indices ${patterns ?? "(default)"} THEN ${expected.join(", ")}`, () => {
      assert.deepEqual(
        selectIndices(all, parsePatterns(patterns)).map((i) => i.name),
        expected,
      );
    });
  }

  test("GIVEN rename flags THEN names change as in a snapshot restore, and bad ones are refused", () => {
    const rename = parseRename("^logs-(\\d+)$", "restored-logs-$1");
    assert.equal(renamed("logs-1", rename), "restored-logs-1");
    assert.equal(renamed("metrics", rename), "metrics");
    assert.equal(renamed("a-a", parseRename("a", "b")), "b-b");
    // The engine names the field; the CLI shows it as its flag.
    assert.throws(
      () => parseRename("(", "x"),
      (error) => error instanceof FieldError && /--rename-pattern "\(":/.test(error.render(flagOf)),
    );
    assert.throws(() => parseRename("x", undefined), /go together/);
    assert.equal(invalidIndexName("Logs"), "must be lowercase");
    assert.equal(invalidIndexName("_x"), 'must not start with "-", "_" or "+"');
    assert.equal(invalidIndexName("a b"), 'must not contain \\ / * ? " < > | space , # :');
    assert.equal(invalidIndexName("ok-1.2"), undefined);
  });
});

describe("connection and errors", () => {
  test("GIVEN the environment THEN flags win over ES_URL over ELASTICSEARCH_URL, and credentials are secrets", () => {
    const conn = esConnectionFrom(
      {},
      {
        ELASTICSEARCH_URL: "http://cnvrg-es:9200",
        CNVRG_ES_USER: "cnvrg",
        CNVRG_ES_PASS: "cnvrg-pass-123",
      },
    );
    assert.equal(conn.url.href, "http://cnvrg-es:9200/");
    assert.deepEqual(conn.auth, { kind: "basic", user: "cnvrg", password: "cnvrg-pass-123" });
    assert.equal(redact("oops cnvrg-pass-123"), "oops ***");
    assert.equal(
      esConnectionFrom({ url: "es:9200" }, { ES_URL: "http://other" }).url.href,
      "http://es:9200/",
    );
    assert.equal(esConnectionFrom({}, { ES_API_KEY: "key-12345", ES_USER: "u" }).auth?.kind, "apiKey");
    assert.throws(() => esConnectionFrom({}, { ES_USER: "u" }), /no password is set/);
    assert.throws(() => esConnectionFrom({ url: "ftp://x" }, {}), /must be an http\(s\) URL/);
  });

  test("GIVEN error bodies of every shape THEN type and reason are found", () => {
    assert.deepEqual(
      errorOf(
        '{"error":{"root_cause":[{"type":"search_context_missing_exception","reason":"No search context found for id [3]"}],' +
          '"type":"search_phase_execution_exception","reason":"all shards failed"},"status":404}',
      ),
      { type: "search_context_missing_exception", reason: "No search context found for id [3]" },
    );
    assert.deepEqual(errorOf('{"error":"no handler found for uri [/x] and method [GET]"}'), {
      type: "error",
      reason: "no handler found for uri [/x] and method [GET]",
    });
    assert.deepEqual(errorOf("Unauthorized"), { type: "error", reason: "Unauthorized" });
    assert.deepEqual(errorOf(""), { type: "error", reason: "(empty answer)" });
  });

  test("GIVEN a multi-byte character split across chunks THEN lines decode whole", async () => {
    const text = Buffer.from('{"a":"数据🚀"}\n{"b":1}\nlast');
    const chunks = Array.from({ length: text.length }, (_, i) => text.subarray(i, i + 1));
    const lines: string[] = [];
    for await (const line of readLines(
      (async function* () {
        for (const chunk of chunks) yield await Promise.resolve(chunk);
      })(),
    ))
      lines.push(line);
    assert.deepEqual(lines, ['{"a":"数据🚀"}', '{"b":1}', "last"]);
  });
});
