/**
 * FAKE Elasticsearch / OpenSearch — a wire-level test double, not a search engine. No Elasticsearch can run on these
 * machines (docs/design.md §12), so this is a real HTTP(S) server on 127.0.0.1 (random port) that answers the endpoints
 * capsule uses with the URL paths, status codes and JSON bodies of Elasticsearch 7.x, 8.x and OpenSearch 2.x (the
 * flavour is chosen at construction), and keeps documents in memory, as raw `_source` text like the real thing:
 *
 *   GET /                                 name, cluster_name, cluster_uuid, version{number, build_flavor | distribution}
 *   GET /_cat/indices?format=json[&h=][&bytes=b][&expand_wildcards=]
 *   GET|HEAD|PUT|DELETE /{index}          settings as the server returns them (uuid, creation_date, version.created,
 *                                         provided_name…), mappings, aliases; 400 resource_already_exists_exception
 *   PUT /{index}/_settings
 *   POST /{index}/_pit?keep_alive=        Elasticsearch ≥ 7.10 only; DELETE /_pit
 *   POST /_search                         with pit + search_after + sort [_shard_doc] (≥ 7.12) or [_doc]
 *   POST /{index}/_search[?scroll=]       POST /_search/scroll, DELETE /_search/scroll
 *   POST /_bulk, /{index}/_bulk           NDJSON, per-item results; 429s and item errors on request (see below)
 *   POST /{index}/_refresh, GET|POST /{index}/_count, POST /_aliases
 *   basic auth / API keys                 401 security_exception (OpenSearch's security plugin: plain "Unauthorized")
 *
 * Near-real-time like the real thing: documents are visible to search and _count only after a refresh (automatic
 * every `refreshIntervalMs` unless the index's refresh_interval is -1, or POST /_refresh). One shard per index:
 * `_shard_doc` and `_doc` sort values are the document's position in the searched snapshot.
 *
 * Test hooks (not wire behaviour): `rejectBulkRequests(n)`, `rejectBulkItems(rule)`, `failSearchAfter(pages)`,
 * `seed()`, `index()`, `openContexts`, `requests`.
 */
import { randomBytes, randomUUID } from "node:crypto";
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";

export type Flavour = "7" | "8" | "opensearch";

export interface FakeEsOptions {
  readonly flavour: Flavour;
  /** Overrides the flavour's version number (e.g. "7.10.2" for a server with PIT but no _shard_doc). */
  readonly version?: string;
  /** Basic auth required when set. */
  readonly user?: { readonly name: string; readonly password: string };
  /** An accepted API key (the encoded form sent as `Authorization: ApiKey <key>`). */
  readonly apiKey?: string;
  readonly tls?: { readonly key: string; readonly cert: string };
  /** @default 1000; 0 turns automatic refresh off */
  readonly refreshIntervalMs?: number;
  readonly clusterName?: string;
}

interface Doc {
  readonly source: string;
  readonly routing?: string;
}

export interface FakeIndex {
  readonly name: string;
  readonly uuid: string;
  /** Flat settings, values as strings (arrays of strings for lists), like `?flat_settings=true`. */
  settings: Record<string, string | string[]>;
  mappings: Record<string, unknown>;
  aliases: Map<string, Record<string, unknown>>;
  /** Everything indexed, visible or not. */
  readonly docs: Map<string, Doc>;
  /** What search and _count see: the docs as of the last refresh. */
  visible: Array<[string, Doc]>;
  dirty: boolean;
  closed: boolean;
}

interface Context {
  readonly kind: "pit" | "scroll";
  readonly index: string;
  readonly snapshot: Array<[string, Doc]>;
  keepAliveMs: number;
  lastUsed: number;
  /** Scroll position. */
  position: number;
  size: number;
}

export interface BulkItemRule {
  /** Which documents (index, id) the rule answers for. */
  readonly match: (index: string, id: string) => boolean;
  readonly status: number;
  readonly type: string;
  readonly reason?: string;
  /** How many times each matching document is rejected; undefined = always. */
  readonly times?: number;
}

interface Reply {
  status: number;
  body?: unknown;
  /** A body already serialized (search answers embed raw `_source`). */
  raw?: string;
  text?: string;
  headers?: Record<string, string | string[]>;
}

const VERSIONS: Record<Flavour, string> = { "7": "7.17.18", "8": "8.13.4", opensearch: "2.11.1" };

export class FakeElasticsearch {
  readonly indices = new Map<string, FakeIndex>();
  /** "METHOD /path" of every request, in order. */
  readonly requests: string[] = [];
  private readonly contexts = new Map<string, Context>();
  private readonly sockets = new Set<Socket>();
  private contextCounter = 0;
  private bulkRejections = 0;
  private readonly itemRules: Array<{ rule: BulkItemRule; seen: Map<string, number> }> = [];
  private searchFailure: { after: number; served: number } | undefined;
  private readonly lostInPaging = new Set<string>();
  private refreshTimer: NodeJS.Timeout | undefined;
  readonly version: string;
  readonly clusterUuid = randomBytes(16).toString("base64url").slice(0, 22);

  private constructor(
    private readonly server: Server,
    readonly options: FakeEsOptions,
    readonly url: string,
  ) {
    this.version = options.version ?? VERSIONS[options.flavour];
  }

  static async start(options: FakeEsOptions): Promise<FakeElasticsearch> {
    const holder: { fake?: FakeElasticsearch } = {};
    const handler = (req: IncomingMessage, res: ServerResponse) => void holder.fake!.handle(req, res);
    const server: Server = options.tls ? createHttpsServer(options.tls, handler) : createHttpServer(handler);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const fake = new FakeElasticsearch(
      server,
      options,
      `${options.tls ? "https" : "http"}://127.0.0.1:${port}`,
    );
    holder.fake = fake;
    server.on("connection", (socket: Socket) => {
      fake.sockets.add(socket);
      socket.on("close", () => fake.sockets.delete(socket));
    });
    const interval = options.refreshIntervalMs ?? 1000;
    if (interval > 0) {
      fake.refreshTimer = setInterval(() => {
        for (const index of fake.indices.values()) {
          if (index.settings["index.refresh_interval"] !== "-1") refresh(index);
        }
      }, interval);
      fake.refreshTimer.unref();
    }
    return fake;
  }

  async close(): Promise<void> {
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  get isElasticsearch(): boolean {
    return this.options.flavour !== "opensearch";
  }

  /** Open points in time and scrolls (a test asserts capsule closed its own). */
  get openContexts(): { pit: number; scroll: number } {
    this.expireContexts();
    let pit = 0;
    let scroll = 0;
    for (const c of this.contexts.values())
      if (c.kind === "pit") pit++;
      else scroll++;
    return { pit, scroll };
  }

  // ---- test hooks -------------------------------------------------------------------------------------------------

  /** Creates an index directly (as PUT /{index} would) and indexes documents into it, refreshed. */
  seed(
    name: string,
    definition: { settings?: Record<string, unknown>; mappings?: Record<string, unknown>; aliases?: object },
    docs: Iterable<{ id: string; source: unknown; routing?: string }> = [],
  ): FakeIndex {
    const reply = this.createIndex(name, definition);
    if (reply.status !== 200) throw new Error(`seed ${name}: ${JSON.stringify(reply.body)}`);
    const index = this.indices.get(name)!;
    for (const doc of docs) {
      const source = typeof doc.source === "string" ? doc.source : JSON.stringify(doc.source);
      index.docs.set(doc.id, { source, ...(doc.routing !== undefined ? { routing: doc.routing } : {}) });
      index.dirty = true;
    }
    refresh(index);
    return index;
  }

  index(name: string): FakeIndex | undefined {
    return this.indices.get(name);
  }

  /** POST /{index}/_close, as far as listing goes: _cat/indices reports it `close`. */
  closeIndex(name: string): void {
    this.indices.get(name)!.closed = true;
  }

  /** The next `n` bulk requests are answered 429 as a whole. */
  rejectBulkRequests(n: number): void {
    this.bulkRejections = n;
  }

  /** Bulk items matching the rule are answered with its status/type (for `times` attempts each, or always). */
  rejectBulkItems(rule: BulkItemRule): void {
    this.itemRules.push({ rule, seen: new Map() });
  }

  /** Search pages leave this document out although totals count it (a paging bug capsule's count check catches). */
  loseInPaging(id: string): void {
    this.lostInPaging.add(id);
  }

  /** After `pages` more search/scroll pages, every page request fails with 500 (the cluster breaks mid-export). */
  failSearchAfter(pages: number): void {
    this.searchFailure = { after: pages, served: 0 };
  }

  // ---- HTTP -------------------------------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    const url = new URL(req.url ?? "/", "http://fake");
    const method = req.method ?? "GET";
    this.requests.push(`${method} ${url.pathname}`);
    let reply: Reply;
    try {
      reply = this.authenticate(req, url) ?? this.route(method, url, body, req.headers["content-type"]);
    } catch (error) {
      reply = errorReply(500, "exception", `fake: ${(error as Error).message}`);
    }
    const text = reply.raw ?? reply.text ?? (reply.body === undefined ? "" : JSON.stringify(reply.body));
    res.writeHead(reply.status, {
      "content-type": reply.text !== undefined ? "text/plain; charset=UTF-8" : "application/json",
      "content-length": String(Buffer.byteLength(text)),
      ...(this.isElasticsearch ? { "x-elastic-product": "Elasticsearch" } : {}),
      ...reply.headers,
    });
    res.end(method === "HEAD" ? undefined : text);
  }

  private authenticate(req: IncomingMessage, url: URL): Reply | undefined {
    if (!this.options.user && !this.options.apiKey) return undefined;
    const header = req.headers["authorization"] ?? "";
    const [scheme, value = ""] = header.split(" ", 2);
    if (scheme === "Basic" && this.options.user) {
      const [name, ...rest] = Buffer.from(value, "base64").toString("utf8").split(":");
      if (name === this.options.user.name && rest.join(":") === this.options.user.password) return undefined;
      return this.unauthorized(`unable to authenticate user [${name}] for REST request [${url.pathname}]`);
    }
    if (scheme === "ApiKey" && this.options.apiKey && this.isElasticsearch) {
      if (value === this.options.apiKey) return undefined;
      return this.unauthorized(
        `unable to authenticate with provided credentials and anonymous access is not allowed for this request`,
      );
    }
    return this.unauthorized(`missing authentication credentials for REST request [${url.pathname}]`);
  }

  private unauthorized(reason: string): Reply {
    if (!this.isElasticsearch) {
      // The OpenSearch security plugin answers in plain text.
      return {
        status: 401,
        text: "Unauthorized",
        headers: { "www-authenticate": 'Basic realm="OpenSearch Security"' },
      };
    }
    const header = { "WWW-Authenticate": ['Basic realm="security" charset="UTF-8"', "ApiKey"] };
    return {
      ...errorReply(401, "security_exception", reason, { header }),
      headers: { "www-authenticate": header["WWW-Authenticate"] },
    };
  }

  private route(method: string, url: URL, body: string, contentType: string | undefined): Reply {
    const parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    const q = url.searchParams;
    if (body.length > 0 && !contentType) {
      return errorReply(406, "error", "Content-Type header [] is not supported");
    }
    const json = (): Record<string, unknown> => (body ? (JSON.parse(body) as Record<string, unknown>) : {});
    const [first, second] = parts;

    if (parts.length === 0 && (method === "GET" || method === "HEAD"))
      return { status: 200, body: this.root() };
    if (first === "_cat" && second === "indices" && method === "GET") return this.catIndices(q);
    if (first === "_bulk" && (method === "POST" || method === "PUT")) return this.bulk(body, undefined);
    if (first === "_pit" && method === "DELETE") return this.closeContexts("pit", [json()["id"]]);
    if (first === "_search" && second === "scroll") {
      if (method === "DELETE") {
        const ids = json()["scroll_id"];
        return this.closeContexts("scroll", Array.isArray(ids) ? ids : [ids]);
      }
      return this.scrollNext(json());
    }
    if (first === "_search" && parts.length === 1) return this.search(undefined, json(), q);
    if (first === "_aliases" && method === "POST") return this.aliases(json());
    if (first === "_refresh") {
      for (const index of this.indices.values()) refresh(index);
      return { status: 200, body: shards(this.indices.size) };
    }
    if (!first || first.startsWith("_")) return noHandler(method, url);

    const name = first;
    if (parts.length === 1) {
      switch (method) {
        case "HEAD":
          return { status: this.resolve(name).length > 0 ? 200 : 404 };
        case "GET":
          return this.getIndex(name, q.get("flat_settings") === "true");
        case "PUT":
          return this.createIndex(name, json());
        case "DELETE":
          return this.deleteIndex(name);
      }
      return noHandler(method, url);
    }
    switch (second) {
      case "_pit":
        if (method !== "POST") return noHandler(method, url);
        return this.openPit(name, q);
      case "_search":
        return this.search(name, json(), q);
      case "_bulk":
        return this.bulk(body, name);
      case "_refresh": {
        const found = this.resolve(name);
        if (found.length === 0) return indexNotFound(name);
        found.forEach(refresh);
        return { status: 200, body: shards(found.length) };
      }
      case "_count": {
        const found = this.resolve(name);
        if (found.length === 0) return indexNotFound(name);
        const count = found.reduce((sum, i) => sum + i.visible.length, 0);
        return { status: 200, body: { count, _shards: shards(found.length)._shards } };
      }
      case "_settings":
        if (method === "PUT") return this.putSettings(name, json());
    }
    return noHandler(method, url);
  }

  private root(): object {
    const es = this.isElasticsearch;
    return {
      name: "fake-node-1",
      cluster_name: this.options.clusterName ?? (es ? "docker-cluster" : "opensearch-cluster"),
      cluster_uuid: this.clusterUuid,
      version: {
        ...(es ? {} : { distribution: "opensearch" }),
        number: this.version,
        ...(es ? { build_flavor: "default" } : {}),
        build_type: es ? "docker" : "tar",
        build_hash: "0000000000000000000000000000000000000000",
        build_date: "2024-01-01T00:00:00.000000000Z",
        build_snapshot: false,
        lucene_version: es ? (this.options.flavour === "8" ? "9.10.0" : "8.11.1") : "9.7.0",
        minimum_wire_compatibility_version: this.options.flavour === "8" ? "7.17.0" : "6.8.0",
        minimum_index_compatibility_version: this.options.flavour === "8" ? "7.0.0" : "6.0.0-beta1",
      },
      tagline: es ? "You Know, for Search" : "The OpenSearch Project: https://opensearch.org/",
    };
  }

  private get hasPit(): boolean {
    return this.isElasticsearch && versionAtLeast(this.version, 7, 10);
  }

  private get hasShardDoc(): boolean {
    return this.isElasticsearch && versionAtLeast(this.version, 7, 12);
  }

  /** Index names an expression (name, alias, comma list, wildcard) resolves to. */
  private resolve(expression: string): FakeIndex[] {
    const found = new Set<FakeIndex>();
    for (const part of expression.split(",")) {
      if (part === "_all" || part.includes("*")) {
        const re = new RegExp(
          `^${part === "_all" ? ".*" : part.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*")}$`,
        );
        for (const index of this.indices.values()) {
          if (
            re.test(index.name) &&
            index.settings["index.hidden"] !== "true" &&
            !index.name.startsWith(".")
          ) {
            found.add(index);
          }
        }
        continue;
      }
      const index = this.indices.get(part);
      if (index) found.add(index);
      for (const other of this.indices.values()) if (other.aliases.has(part)) found.add(other);
    }
    return [...found];
  }

  private catIndices(q: URLSearchParams): Reply {
    const wildcards = q.get("expand_wildcards") ?? "all";
    const rows = [...this.indices.values()]
      .filter(
        (i) =>
          wildcards.includes("all") || wildcards.includes("hidden") || i.settings["index.hidden"] !== "true",
      )
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .map((i) => {
        const bytes = i.visible.reduce((sum, [, d]) => sum + d.source.length + 64, 230);
        const size = q.get("bytes") === "b" ? String(bytes) : humanBytes(bytes);
        const row: Record<string, string> = {
          health: "green",
          status: i.closed ? "close" : "open",
          index: i.name,
          uuid: i.uuid,
          pri: String(i.settings["index.number_of_shards"] ?? "1"),
          rep: String(i.settings["index.number_of_replicas"] ?? "1"),
          // Lucene documents: nested objects count, as they do in the real _cat/indices.
          "docs.count": String(luceneDocs(i)),
          "docs.deleted": "0",
          "store.size": size,
          "pri.store.size": size,
          ...(this.options.flavour === "8" ? { "dataset.size": size } : {}),
        };
        return row;
      });
    if (q.get("format") !== "json")
      return { status: 200, text: rows.map((r) => Object.values(r).join(" ")).join("\n") + "\n" };
    const columns = q.get("h")?.split(",");
    const shaped = columns
      ? rows.map((r) => Object.fromEntries(columns.map((c) => [c, r[c] ?? null])))
      : rows;
    return { status: 200, body: shaped };
  }

  private getIndex(expression: string, flat: boolean): Reply {
    const found = this.resolve(expression);
    if (found.length === 0) return indexNotFound(expression);
    return {
      status: 200,
      body: Object.fromEntries(
        found.map((i) => [
          i.name,
          {
            aliases: Object.fromEntries(i.aliases),
            mappings: i.mappings,
            settings: flat ? { ...i.settings } : nest(i.settings),
          },
        ]),
      ),
    };
  }

  private createIndex(name: string, body: Record<string, unknown>): Reply {
    const invalid = invalidName(name);
    if (invalid) {
      return errorReply(400, "invalid_index_name_exception", `Invalid index name [${name}], ${invalid}`, {
        index_uuid: "_na_",
        index: name,
      });
    }
    const existing = this.indices.get(name);
    if (existing) {
      return errorReply(
        400,
        "resource_already_exists_exception",
        `index [${name}/${existing.uuid}] already exists`,
        {
          index_uuid: existing.uuid,
          index: name,
        },
      );
    }
    for (const index of this.indices.values()) {
      if (index.aliases.has(name)) {
        return errorReply(
          400,
          "invalid_index_name_exception",
          `Invalid index name [${name}], already exists as alias`,
          {
            index_uuid: "_na_",
            index: name,
          },
        );
      }
    }
    const given = normalizeSettings((body["settings"] as Record<string, unknown> | undefined) ?? {});
    for (const key of Object.keys(given)) {
      const problem = this.settingProblem(key);
      if (problem) return errorReply(400, "illegal_argument_exception", problem);
    }
    const mappings = (body["mappings"] as Record<string, unknown> | undefined) ?? {};
    if (Object.keys(mappings).length === 1 && mappings["_doc"] && this.options.flavour === "8") {
      return errorReply(
        400,
        "mapper_parsing_exception",
        "Root mapping definition has unsupported parameters:  [_doc : " +
          JSON.stringify(mappings["_doc"]) +
          "]",
      );
    }
    const uuid = randomBytes(16).toString("base64url").slice(0, 22);
    const settings: Record<string, string | string[]> = {
      "index.number_of_shards": "1",
      "index.number_of_replicas": "1",
      ...given,
      "index.uuid": uuid,
      "index.creation_date": String(Date.now()),
      "index.provided_name": name,
      "index.version.created": this.createdVersion(),
    };
    if (this.options.flavour === "8" && !settings["index.routing.allocation.include._tier_preference"]) {
      settings["index.routing.allocation.include._tier_preference"] = "data_content";
    }
    if (this.options.flavour === "opensearch") settings["index.replication.type"] ??= "DOCUMENT";
    const index: FakeIndex = {
      name,
      uuid,
      settings,
      mappings,
      aliases: new Map(),
      docs: new Map(),
      visible: [],
      dirty: false,
      closed: false,
    };
    this.indices.set(name, index);
    const aliases = (body["aliases"] as Record<string, Record<string, unknown>> | undefined) ?? {};
    for (const [alias, definition] of Object.entries(aliases))
      index.aliases.set(alias, aliasDefinition(definition));
    return { status: 200, body: { acknowledged: true, shards_acknowledged: true, index: name } };
  }

  /** Why a setting cannot be given at creation, as the server words it. */
  private settingProblem(key: string): string | undefined {
    if (
      ["index.uuid", "index.creation_date", "index.provided_name", "index.history.uuid"].includes(key) ||
      key.startsWith("index.version.") ||
      key.startsWith("index.resize.source.")
    ) {
      return `private index setting [${key}] can not be set explicitly`;
    }
    const foreign = this.isElasticsearch
      ? key.startsWith("index.replication.") ||
        key.startsWith("index.plugins.") ||
        key.startsWith("index.opendistro.")
      : key === "index.routing.allocation.include._tier_preference" || key.startsWith("index.lifecycle.");
    if (foreign) {
      return (
        `unknown setting [${key}] please check that any required plugins are installed, or check the breaking ` +
        `changes documentation for removed settings`
      );
    }
    return undefined;
  }

  private createdVersion(): string {
    if (!this.isElasticsearch) return "136327827";
    const [major = 0, minor = 0, patch = 0] = this.version.split(".").map(Number);
    return String(major * 1_000_000 + minor * 10_000 + patch * 100 + 99);
  }

  private deleteIndex(expression: string): Reply {
    const index = this.indices.get(expression);
    if (!index) return indexNotFound(expression);
    this.indices.delete(expression);
    return { status: 200, body: { acknowledged: true } };
  }

  private putSettings(name: string, body: Record<string, unknown>): Reply {
    const found = this.resolve(name);
    if (found.length === 0) return indexNotFound(name);
    const given = normalizeSettings((body["settings"] as Record<string, unknown> | undefined) ?? body);
    for (const index of found) Object.assign(index.settings, given);
    return { status: 200, body: { acknowledged: true } };
  }

  private aliases(body: Record<string, unknown>): Reply {
    const actions = (body["actions"] as Array<Record<string, Record<string, unknown>>> | undefined) ?? [];
    for (const action of actions) {
      const [kind, spec] = Object.entries(action)[0] ?? [];
      if (!spec) continue;
      const {
        index: indexName,
        alias,
        ...definition
      } = spec as { index: string; alias: string } & Record<string, unknown>;
      const index = this.indices.get(indexName);
      if (!index) return indexNotFound(indexName);
      if (kind === "add") {
        if (definition["is_write_index"] === true) {
          const other = [...this.indices.values()].find(
            (i) => i !== index && i.aliases.get(alias)?.["is_write_index"] === true,
          );
          if (other) {
            return errorReply(
              400,
              "illegal_state_exception",
              `alias [${alias}] has more than one write index [${other.name},${index.name}]`,
            );
          }
        }
        index.aliases.set(alias, aliasDefinition(definition));
      } else if (kind === "remove") index.aliases.delete(alias);
    }
    return {
      status: 200,
      body: this.options.flavour === "8" ? { acknowledged: true, errors: false } : { acknowledged: true },
    };
  }

  // ---- search, PIT, scroll ----------------------------------------------------------------------------------------

  private openPit(name: string, q: URLSearchParams): Reply {
    if (!this.hasPit) return noHandler("POST", new URL(`http://fake/${name}/_pit`));
    const keepAlive = q.get("keep_alive");
    if (!keepAlive) {
      return errorReply(
        400,
        "action_request_validation_exception",
        "Validation Failed: 1: [keep_alive] is not specified;",
      );
    }
    const found = this.resolve(name);
    if (found.length === 0) return indexNotFound(name);
    const id = this.newContext("pit", found[0]!, parseDuration(keepAlive), 0);
    return { status: 200, body: { id } };
  }

  private newContext(kind: "pit" | "scroll", index: FakeIndex, keepAliveMs: number, size: number): string {
    const n = ++this.contextCounter;
    // Real ids are opaque base64 blobs; these are too (and just as long-ish).
    const id = Buffer.from(`${kind}:${n}:${index.name}:${randomUUID()}`).toString("base64");
    this.contexts.set(id, {
      kind,
      index: index.name,
      snapshot: index.visible,
      keepAliveMs,
      lastUsed: Date.now(),
      position: 0,
      size,
    });
    return id;
  }

  private context(kind: "pit" | "scroll", id: unknown): Context | Reply {
    this.expireContexts();
    if (typeof id !== "string" || !Buffer.from(id, "base64").toString().startsWith(`${kind}:`)) {
      return errorReply(
        400,
        "illegal_argument_exception",
        `Cannot parse ${kind === "pit" ? "point in time" : "scroll"} id`,
      );
    }
    const context = this.contexts.get(id);
    if (!context) {
      const n = Buffer.from(id, "base64").toString().split(":")[1];
      return errorReply(404, "search_phase_execution_exception", "all shards failed", {}, [
        { type: "search_context_missing_exception", reason: `No search context found for id [${n}]` },
      ]);
    }
    context.lastUsed = Date.now();
    return context;
  }

  private expireContexts(): void {
    const now = Date.now();
    for (const [id, c] of this.contexts) if (now - c.lastUsed > c.keepAliveMs) this.contexts.delete(id);
  }

  private closeContexts(kind: "pit" | "scroll", ids: unknown[]): Reply {
    let freed = 0;
    for (const id of ids) {
      if (typeof id === "string" && this.contexts.get(id)?.kind === kind && this.contexts.delete(id)) freed++;
    }
    // Closing nothing answered 404 until Elasticsearch 8.8 (and still does on OpenSearch).
    const notFound = freed === 0 && !(this.isElasticsearch && versionAtLeast(this.version, 8, 8));
    return { status: notFound ? 404 : 200, body: { succeeded: true, num_freed: freed } };
  }

  private pageFailure(): Reply | undefined {
    if (!this.searchFailure) return undefined;
    if (this.searchFailure.served++ < this.searchFailure.after) return undefined;
    return errorReply(500, "search_phase_execution_exception", "all shards failed", {}, [
      { type: "node_not_connected_exception", reason: "[fake-node-1][127.0.0.1:9300] Node not connected" },
    ]);
  }

  private search(name: string | undefined, body: Record<string, unknown>, q: URLSearchParams): Reply {
    const pit = body["pit"] as { id?: unknown; keep_alive?: string } | undefined;
    const size = typeof body["size"] === "number" ? body["size"] : 10;
    const sortKey = sortField(body["sort"]);
    if (sortKey === "_shard_doc" && !this.hasShardDoc) {
      return errorReply(400, "search_phase_execution_exception", "all shards failed", {}, [
        { type: "query_shard_exception", reason: "No mapping found for [_shard_doc] in order to sort on" },
      ]);
    }
    if (pit) {
      if (name !== undefined) {
        return errorReply(
          400,
          "action_request_validation_exception",
          "Validation Failed: 1: [indices] cannot be used with point in time. Do not specify any index with point in time.;",
        );
      }
      const context = this.context("pit", pit.id);
      if (!("snapshot" in context)) return context;
      if (pit.keep_alive) context.keepAliveMs = parseDuration(pit.keep_alive);
      if (size > 0) {
        const failure = this.pageFailure();
        if (failure) return failure;
      }
      const after = body["search_after"] as unknown[] | undefined;
      const start = after ? Number(after[after.length - 1]) + 1 : 0;
      return this.page(context.snapshot, start, size, body["track_total_hits"], pit.id as string, undefined);
    }
    const found = name === undefined ? [...this.indices.values()] : this.resolve(name);
    if (name !== undefined && found.length === 0) return indexNotFound(name);
    const snapshot = found.flatMap((i) => i.visible.map(([id, d]) => [id, d, i.name] as const));
    const scroll = q.get("scroll");
    if (scroll) {
      if (body["track_total_hits"] === false) {
        return errorReply(
          400,
          "action_request_validation_exception",
          "Validation Failed: 1: disabling [track_total_hits] is not allowed in a scroll context;",
        );
      }
      if (found.length !== 1)
        return errorReply(400, "illegal_argument_exception", "fake: scroll over one index only");
      const id = this.newContext("scroll", found[0]!, parseDuration(scroll), size);
      const context = this.contexts.get(id)!;
      const failure = this.pageFailure();
      if (failure) return failure;
      context.position = Math.min(size, context.snapshot.length);
      return this.page(context.snapshot, 0, size, true, undefined, id);
    }
    const from = typeof body["from"] === "number" ? body["from"] : 0;
    return this.page(
      snapshot.map(([id, d]) => [id, d] as [string, Doc]),
      from,
      size,
      body["track_total_hits"],
      undefined,
      undefined,
      snapshot.map(([, , index]) => index),
    );
  }

  private scrollNext(body: Record<string, unknown>): Reply {
    const context = this.context("scroll", body["scroll_id"]);
    if (!("snapshot" in context)) return context;
    if (typeof body["scroll"] === "string") context.keepAliveMs = parseDuration(body["scroll"]);
    const failure = this.pageFailure();
    if (failure) return failure;
    const start = context.position;
    context.position = Math.min(start + context.size, context.snapshot.length);
    return this.page(context.snapshot, start, context.size, true, undefined, body["scroll_id"] as string);
  }

  /** A search answer, serialized by hand so `_source` goes out as the raw text it came in as. */
  private page(
    snapshot: Array<[string, Doc]>,
    start: number,
    size: number,
    trackTotalHits: unknown,
    pitId: string | undefined,
    scrollId: string | undefined,
    indexNames?: string[],
  ): Reply {
    const context = pitId ? this.contexts.get(pitId) : scrollId ? this.contexts.get(scrollId) : undefined;
    const indexName = context?.index ?? "";
    const typed = this.options.flavour === "7" ? `"_type":"_doc",` : "";
    const hits: string[] = [];
    for (let i = start; i < Math.min(start + size, snapshot.length); i++) {
      const [id, doc] = snapshot[i]!;
      if (this.lostInPaging.has(id)) continue;
      const index = indexNames?.[i] ?? indexName;
      hits.push(
        `{"_index":${JSON.stringify(index)},${typed}"_id":${JSON.stringify(id)},"_score":null,` +
          (doc.routing !== undefined ? `"_routing":${JSON.stringify(doc.routing)},` : "") +
          `"_source":${doc.source},"sort":[${i}]}`,
      );
    }
    const totalValue = snapshot.length;
    const total =
      trackTotalHits === false
        ? ""
        : trackTotalHits === true || totalValue <= 10_000
          ? `"total":{"value":${totalValue},"relation":"eq"},`
          : `"total":{"value":10000,"relation":"gte"},`;
    const raw =
      "{" +
      (pitId ? `"pit_id":${JSON.stringify(pitId)},` : "") +
      (scrollId ? `"_scroll_id":${JSON.stringify(scrollId)},` : "") +
      `"took":1,"timed_out":false,"_shards":{"total":1,"successful":1,"skipped":0,"failed":0},` +
      `"hits":{${total}"max_score":null,"hits":[${hits.join(",")}]}}`;
    return { status: 200, raw };
  }

  // ---- bulk -------------------------------------------------------------------------------------------------------

  private bulk(body: string, defaultIndex: string | undefined): Reply {
    if (this.bulkRejections > 0) {
      this.bulkRejections--;
      return errorReply(
        429,
        "es_rejected_execution_exception",
        "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, " +
          "all_bytes=0, coordinating_operation_bytes=5242880, max_coordinating_and_primary_bytes=53687091]",
      );
    }
    const lines = body.split("\n");
    if (lines[lines.length - 1] !== "") {
      return errorReply(
        400,
        "illegal_argument_exception",
        "The bulk request must be terminated by a newline [\\n]",
      );
    }
    const items: string[] = [];
    let errors = false;
    const touched = new Set<FakeIndex>();
    for (let i = 0; i < lines.length - 1; i++) {
      const line = lines[i]!;
      if (line.trim() === "") continue;
      const action = JSON.parse(line) as Record<string, { _index?: string; _id?: string; routing?: string }>;
      const [op, meta = {}] = Object.entries(action)[0] ?? ["", {}];
      const indexName = meta._index ?? defaultIndex ?? "";
      const id = meta._id ?? randomBytes(15).toString("base64url");
      if (op === "delete") {
        const index = this.indices.get(indexName);
        const existed = index?.docs.delete(id) ?? false;
        if (index) index.dirty = true;
        items.push(
          this.itemResult(op, indexName, id, existed ? 200 : 404, existed ? "deleted" : "not_found"),
        );
        continue;
      }
      const source = lines[++i] ?? "";
      if (op !== "index" && op !== "create") {
        items.push(
          this.itemError(op, indexName, id, 400, "illegal_argument_exception", `fake: ${op} not supported`),
        );
        errors = true;
        continue;
      }
      const rejection = this.itemRejection(indexName, id);
      if (rejection) {
        items.push(this.itemError(op, indexName, id, rejection.status, rejection.type, rejection.reason));
        errors = true;
        continue;
      }
      try {
        JSON.parse(source);
      } catch {
        items.push(this.itemError(op, indexName, id, 400, "mapper_parsing_exception", "failed to parse"));
        errors = true;
        continue;
      }
      let index = this.indices.get(indexName);
      if (!index) {
        // action.auto_create_index: true (the default)
        const created = this.createIndex(indexName, {});
        if (created.status !== 200) {
          items.push(
            this.itemError(
              op,
              indexName,
              id,
              400,
              "invalid_index_name_exception",
              `Invalid index name [${indexName}]`,
            ),
          );
          errors = true;
          continue;
        }
        index = this.indices.get(indexName)!;
      }
      const existed = index.docs.has(id);
      if (op === "create" && existed) {
        items.push(
          this.itemError(
            op,
            indexName,
            id,
            409,
            "version_conflict_engine_exception",
            `[${id}]: version conflict, document already exists (current version [1])`,
          ),
        );
        errors = true;
        continue;
      }
      index.docs.set(id, { source, ...(meta.routing !== undefined ? { routing: meta.routing } : {}) });
      index.dirty = true;
      touched.add(index);
      items.push(this.itemResult(op, indexName, id, existed ? 200 : 201, existed ? "updated" : "created"));
    }
    return { status: 200, raw: `{"took":3,"errors":${errors},"items":[${items.join(",")}]}` };
  }

  private itemRejection(
    index: string,
    id: string,
  ): { status: number; type: string; reason: string } | undefined {
    for (const { rule, seen } of this.itemRules) {
      if (!rule.match(index, id)) continue;
      const key = `${index}/${id}`;
      const n = (seen.get(key) ?? 0) + 1;
      seen.set(key, n);
      if (rule.times !== undefined && n > rule.times) continue;
      return {
        status: rule.status,
        type: rule.type,
        reason:
          rule.reason ??
          (rule.status === 429
            ? "rejected execution of primary operation [shard_detail=[" + index + "][0]]"
            : `failed to parse field [value] of type [long] in document with id '${id}'`),
      };
    }
    return undefined;
  }

  private itemResult(op: string, index: string, id: string, status: number, result: string): string {
    const typed = this.options.flavour === "7" ? `"_type":"_doc",` : "";
    return (
      `{${JSON.stringify(op)}:{"_index":${JSON.stringify(index)},${typed}"_id":${JSON.stringify(id)},"_version":1,` +
      `"result":"${result}","_shards":{"total":2,"successful":1,"failed":0},"_seq_no":0,"_primary_term":1,` +
      `"status":${status}}}`
    );
  }

  private itemError(
    op: string,
    index: string,
    id: string,
    status: number,
    type: string,
    reason: string,
  ): string {
    const uuid = this.indices.get(index)?.uuid ?? "_na_";
    const typed = this.options.flavour === "7" ? `"_type":"_doc",` : "";
    return (
      `{${JSON.stringify(op)}:{"_index":${JSON.stringify(index)},${typed}"_id":${JSON.stringify(id)},"status":${status},` +
      `"error":${JSON.stringify({ type, reason, index_uuid: uuid, shard: "0", index })}}}`
    );
  }
}

// ---- helpers ------------------------------------------------------------------------------------------------------

function refresh(index: FakeIndex): void {
  if (!index.dirty) return;
  index.visible = [...index.docs];
  index.dirty = false;
}

function errorReply(
  status: number,
  type: string,
  reason: string,
  extra: Record<string, unknown> = {},
  rootCause?: Array<Record<string, unknown>>,
): Reply {
  const cause = { type, reason, ...extra };
  return {
    status,
    body: {
      error: {
        root_cause: rootCause ?? [cause],
        ...cause,
        ...(rootCause ? { phase: "query", grouped: true, failed_shards: [] } : {}),
      },
      status,
    },
  };
}

function indexNotFound(name: string): Reply {
  return errorReply(404, "index_not_found_exception", `no such index [${name}]`, {
    "resource.type": "index_or_alias",
    "resource.id": name,
    index_uuid: "_na_",
    index: name,
  });
}

function noHandler(method: string, url: URL): Reply {
  return {
    status: 400,
    body: { error: `no handler found for uri [${url.pathname}${url.search}] and method [${method}]` },
  };
}

function shards(n: number): { _shards: object } {
  return { _shards: { total: 2 * n, successful: n, failed: 0 } };
}

function sortField(sort: unknown): string | undefined {
  const first = Array.isArray(sort) ? (sort[0] as unknown) : sort;
  if (typeof first === "string") return first;
  if (first && typeof first === "object") return Object.keys(first)[0];
  return undefined;
}

function parseDuration(text: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(text);
  if (!m) return 60_000;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[
    m[2] as "ms" | "s" | "m" | "h" | "d"
  ];
  return Number(m[1]) * unit;
}

function versionAtLeast(version: string, major: number, minor: number): boolean {
  const [a = 0, b = 0] = version.split(".").map(Number);
  return a > major || (a === major && b >= minor);
}

/** Flat settings with the "index." prefix and string values, as the server stores them. */
function normalizeSettings(input: Record<string, unknown>, prefix = ""): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [key, value] of Object.entries(input)) {
    const name = prefix ? `${prefix}.${key}` : key;
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      Object.assign(out, normalizeSettings(value as Record<string, unknown>, name));
    } else out[name.startsWith("index.") ? name : `index.${name}`] = stringify(value);
  }
  return out;
}

function stringify(value: unknown): string | string[] {
  return Array.isArray(value) ? value.map(String) : String(value);
}

/** Flat → nested, as GET /{index} returns settings without flat_settings. */
function nest(flat: Record<string, string | string[]>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(flat)) {
    const path = key.split(".");
    let node = out;
    for (const part of path.slice(0, -1)) node = (node[part] ??= {}) as Record<string, unknown>;
    node[path[path.length - 1]!] = value;
  }
  return out;
}

function aliasDefinition(definition: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (definition["filter"] !== undefined) out["filter"] = definition["filter"];
  const routing = definition["routing"];
  const indexRouting = definition["index_routing"] ?? routing;
  const searchRouting = definition["search_routing"] ?? routing;
  if (indexRouting !== undefined) out["index_routing"] = asText(indexRouting);
  if (searchRouting !== undefined) out["search_routing"] = asText(searchRouting);
  if (definition["is_write_index"] !== undefined) out["is_write_index"] = definition["is_write_index"];
  if (definition["is_hidden"] !== undefined) out["is_hidden"] = definition["is_hidden"];
  return out;
}

function asText(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

function invalidName(name: string): string | undefined {
  if (name !== name.toLowerCase()) return "must be lowercase";
  if (/^[-_+]/.test(name)) return "must not start with '_', '-', or '+'";
  if (/[\\/*?"<>| ,#:]/.test(name))
    return 'must not contain the following characters [ , ", *, \\, <, |, ,, >, /, ?]';
  return undefined;
}

/** Lucene documents of an index: each top-level document plus one per object of a top-level `nested` field. */
function luceneDocs(index: FakeIndex): number {
  const properties = (index.mappings["properties"] ?? {}) as Record<string, { type?: string }>;
  const nested = Object.entries(properties)
    .filter(([, p]) => p.type === "nested")
    .map(([name]) => name);
  if (nested.length === 0) return index.visible.length;
  let n = 0;
  for (const [, doc] of index.visible) {
    n++;
    const source = JSON.parse(doc.source) as Record<string, unknown>;
    for (const field of nested) {
      const value = source[field];
      n += Array.isArray(value) ? value.length : value ? 1 : 0;
    }
  }
  return n;
}

function humanBytes(n: number): string {
  if (n < 1024) return `${n}b`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)}kb`;
  return `${(n / 1024 / 1024).toFixed(1)}mb`;
}
