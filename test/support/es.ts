/**
 * Elasticsearch helpers for tests: a corpus that covers what an export must carry (mappings of every common kind,
 * custom analyzers, aliases with filters and routing, routed documents, unicode, integers beyond 2^53,
 * pretty-printed sources, large documents, system and hidden indices), the environment `capsule es` reads, and a
 * comparison of two fakes index by index.
 */
import assert from "node:assert/strict";
import {
  FakeElasticsearch,
  type FakeEsOptions,
  type FakeIndex,
  type Flavour,
} from "../fakes/elasticsearch.js";

export { FakeElasticsearch, type Flavour };

/** Fakes started by a test file, closed in its `after`. */
export class Fakes {
  private readonly started: FakeElasticsearch[] = [];

  async start(flavour: Flavour, options: Omit<FakeEsOptions, "flavour"> = {}): Promise<FakeElasticsearch> {
    const fake = await FakeElasticsearch.start({ flavour, ...options });
    this.started.push(fake);
    return fake;
  }

  async closeAll(): Promise<void> {
    await Promise.allSettled(this.started.map((f) => f.close()));
  }
}

export function esEnv(
  fake: FakeElasticsearch,
  credentials: { user?: string; password?: string; apiKey?: string } = {},
): Record<string, string> {
  return {
    ES_URL: fake.url,
    ...(credentials.user ? { ES_USER: credentials.user } : {}),
    ...(credentials.password ? { ES_PASSWORD: credentials.password } : {}),
    ...(credentials.apiKey ? { ES_API_KEY: credentials.apiKey } : {}),
  };
}

const WORDS = [
  "alpha",
  "Ünïcödé",
  "数据",
  "שלום",
  "emoji 🚀🔥",
  "tab\there",
  'quote"d',
  "back\\slash",
  "line\u2028sep",
];

/** Document counts of the corpus' user indices, by name. */
export interface Corpus {
  readonly counts: Record<string, number>;
}

/**
 * products (20,000 documents: paging), logs-2024 (routed documents, a routed alias), unicode (odd ids, big
 * integers, pretty-printed sources), blobs (large documents), a system index and a hidden one.
 */
export function seedCorpus(fake: FakeElasticsearch, options: { products?: number } = {}): Corpus {
  const products = options.products ?? 20_000;
  fake.seed(
    "products",
    {
      settings: {
        number_of_shards: 2,
        number_of_replicas: 0,
        refresh_interval: "5s",
        analysis: {
          analyzer: {
            folding: { type: "custom", tokenizer: "standard", filter: ["lowercase", "asciifolding"] },
          },
        },
      },
      mappings: {
        dynamic: "strict",
        properties: {
          name: { type: "text", analyzer: "folding", fields: { raw: { type: "keyword" } } },
          tags: { type: "keyword" },
          price: { type: "scaled_float", scaling_factor: 100 },
          created: { type: "date", format: "strict_date_optional_time||epoch_millis" },
          location: { type: "geo_point" },
          attrs: { type: "object", properties: { color: { type: "keyword" }, size: { type: "integer" } } },
          variants: { type: "nested", properties: { sku: { type: "keyword" }, stock: { type: "long" } } },
        },
      },
      aliases: { catalog: { is_write_index: true }, cheap: { filter: { range: { price: { lt: 10 } } } } },
    },
    (function* () {
      for (let i = 0; i < products; i++) {
        yield {
          id: `p-${i}`,
          source: {
            name: `${WORDS[i % WORDS.length]} product ${i}`,
            tags: [`t${i % 7}`, `t${i % 11}`],
            price: (i % 500) / 10,
            created: new Date(Date.UTC(2024, 0, 1) + i * 60_000).toISOString(),
            location: { lat: 32 + (i % 100) / 100, lon: 34 + (i % 50) / 100 },
            attrs: { color: ["red", "green", "blue"][i % 3], size: i % 40 },
            variants: [
              { sku: `sku-${i}-a`, stock: i },
              { sku: `sku-${i}-b`, stock: i * 2 },
            ],
          },
        };
      }
    })(),
  );
  fake.seed(
    "logs-2024",
    {
      settings: { number_of_shards: 3 },
      mappings: {
        properties: { message: { type: "text" }, tenant: { type: "keyword" }, at: { type: "date" } },
      },
      aliases: { logs: { index_routing: "tenant-1", search_routing: "tenant-1,tenant-2" } },
    },
    Array.from({ length: 1500 }, (_, i) => ({
      id: `log-${i}`,
      routing: `tenant-${i % 3}`,
      source: {
        message: `event ${i} ${WORDS[i % WORDS.length]}`,
        tenant: `tenant-${i % 3}`,
        at: 1700000000000 + i,
      },
    })),
  );
  fake.seed("unicode", { mappings: { properties: { text: { type: "text" }, big: { type: "long" } } } }, [
    { id: "ünï©ødé-id", source: { text: "Grüße, 世界! 👋🏽", big: 1 } },
    { id: "id/with/slashes and spaces", source: { text: "slashes" } },
    { id: 'id"quoted"\\back', source: { text: "quotes" } },
    { id: "🚀", source: { text: "\u0000\u001f control characters \u2028\u2029" } },
    // Integers beyond 2^53 must survive byte for byte: no JSON.parse on the way.
    { id: "bigint", source: '{"text":"big","big":12345678901234567890,"exact":9007199254740993}' },
    // Pretty-printed source, as a client that sends indented JSON leaves it in _source.
    { id: "pretty", source: '{\n  "text" : "indented",\n  "nested" : {\n    "a" : [ 1, 2 ]\n  }\n}' },
    { id: "empty", source: "{}" },
  ]);
  const blob = "x".repeat(600_000);
  fake.seed(
    "blobs",
    { mappings: { properties: { body: { type: "text", index: false } } } },
    Array.from({ length: 40 }, (_, i) => ({ id: `b${i}`, source: { n: i, body: `${i}:${blob}` } })),
  );
  fake.seed(".kibana_1", { settings: { "index.hidden": true } }, [{ id: "config", source: { v: 1 } }]);
  fake.seed("audit-hidden", { settings: { "index.hidden": true } }, [{ id: "a1", source: { who: "x" } }]);
  return { counts: { products, "logs-2024": 1500, unicode: 7, blobs: 40 } };
}

/** Settings a user set (what a restore must bring back), without what the server assigns per index. */
export function userSettings(index: FakeIndex): Record<string, unknown> {
  const assigned = [
    "index.uuid",
    "index.creation_date",
    "index.provided_name",
    "index.version.created",
    "index.routing.allocation.include._tier_preference",
    "index.replication.type",
  ];
  return Object.fromEntries(Object.entries(index.settings).filter(([k]) => !assigned.includes(k)));
}

/** Asserts that `to` holds what `from` held for one index: documents (id, routing, source), mappings, aliases. */
export function assertSameIndex(
  from: FakeElasticsearch,
  to: FakeElasticsearch,
  name: string,
  options: { as?: string; aliases?: boolean; settings?: boolean } = {},
): void {
  const a = from.index(name);
  const b = to.index(options.as ?? name);
  assert.ok(a, `${name} exists in the source`);
  assert.ok(b, `${options.as ?? name} exists in the target`);
  assert.equal(b.docs.size, a.docs.size, `${name}: document count`);
  for (const [id, doc] of a.docs) {
    const restored = b.docs.get(id);
    assert.ok(restored, `${name}/${id} restored`);
    // A raw line break in a pretty-printed source can only be whitespace; the export turns it into a space.
    assert.equal(restored.source, doc.source.replace(/[\r\n]/g, " "), `${name}/${id} source`);
    assert.equal(restored.routing, doc.routing, `${name}/${id} routing`);
  }
  assert.deepEqual(b.mappings, a.mappings, `${name}: mappings`);
  if (options.aliases !== false) {
    assert.deepEqual(Object.fromEntries(b.aliases), Object.fromEntries(a.aliases), `${name}: aliases`);
  }
  if (options.settings !== false) assert.deepEqual(userSettings(b), userSettings(a), `${name}: settings`);
}
