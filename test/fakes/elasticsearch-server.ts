/**
 * The FAKE Elasticsearch (test/fakes/elasticsearch.ts) as a process of its own, for benchmarks that must measure
 * capsule's memory without the fake's. Prints its URL on stdout, then serves until killed.
 *
 *   tsx test/fakes/elasticsearch-server.ts <flavour 7|8|opensearch> [documents to seed into "bench"=0]
 */
import { FakeElasticsearch, type Flavour } from "./elasticsearch.js";

const flavour = (process.argv[2] ?? "8") as Flavour;
const docs = Number(process.argv[3] ?? 0);
const fake = await FakeElasticsearch.start({ flavour });
if (docs > 0) {
  fake.seed(
    "bench",
    { mappings: { properties: { title: { type: "text" }, n: { type: "long" }, at: { type: "date" } } } },
    (function* () {
      for (let i = 0; i < docs; i++) {
        yield {
          id: `doc-${i}`,
          source: {
            title: `document ${i} with some text to make it about the size of a log line`,
            n: i,
            at: new Date(1_700_000_000_000 + i * 1000).toISOString(),
            tags: [`t${i % 13}`, `u${i % 101}`],
            user: { name: `user-${i % 997}`, ip: `10.0.${(i >> 8) & 255}.${i & 255}` },
          },
        };
      }
    })(),
  );
}
process.stdout.write(`${fake.url}\n`);
process.on("SIGTERM", () => void fake.close().then(() => process.exit(0)));
