/**
 * FAKE Kubernetes API server, wire-level, for tests (docs/design.md §12): node:http on 127.0.0.1 and a random port, real URL
 * paths and JSON bodies, so production code talks to it through @kubernetes/client-node unchanged.
 *
 * Resources: mlops.cnvrg.io/v1 cnvrgapps (namespaced and cluster-wide list, get, watch), batch/v1 cronjobs and jobs
 * and apps/v1 deployments (list with labelSelector and paging, get, create, replace, delete), coordination.k8s.io/v1
 * leases (get, create, replace), core/v1 events (create, list), secrets (get), persistentvolumeclaims (create, get),
 * pods (list, get) and the pods/log subresource (plain and `follow=true`, `timestamps`, `sinceTime`; 400 "waiting to
 * start" before the container ran).
 *
 * What it gets right, because the code under test depends on it:
 * - `Status` bodies for errors (kind Status, apiVersion v1, status Failure, message, reason, details, code):
 *   400 BadRequest, 401 Unauthorized, 404 NotFound, 405 MethodNotAllowed, 409 AlreadyExists / Conflict,
 *   410 Expired, 422 Invalid;
 * - one monotonically increasing resourceVersion for every write; `replace` with a stale resourceVersion is a 409
 *   Conflict, as is a delete whose preconditions do not hold;
 * - label selectors (`a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x)`), `limit` + `continue` paging;
 * - watches (`?watch=true`): ADDED/MODIFIED/DELETED, BOOKMARK when asked for, replay from a resourceVersion, and an
 *   ERROR event with a 410 Expired Status when the version is older than the retained history;
 * - Deployments: a selector that matches the template's labels, `restartPolicy: Always`, no `rollingUpdate` with the
 *   Recreate strategy, and an immutable `spec.selector` (422 on replace); a PVC needs access modes and a storage
 *   request;
 * - MicroTime fields (Lease renewTime/acquireTime, Event eventTime) must have exactly six fractional digits, as the
 *   real server's parser demands.
 * Test controls: counters of writes per verb and resource, a write log naming the client of each write, fault
 * injection (the next N requests to a path answer 500 or never answer; `hangLeaseUpdates` for one client's Lease
 * renewals), direct object manipulation that bypasses the counters, watch history compaction, Job
 * completion, and pod logs (what a kubelet would write; see fakes/kubelet.ts, which runs Jobs' pods for real).
 */
import { randomUUID } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

type Obj = Record<string, unknown> & {
  apiVersion?: string;
  kind?: string;
  metadata?: Record<string, unknown> & {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
};

interface ResourceType {
  readonly plural: string;
  /** "" for the core group. */
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  readonly listKind: string;
  /** MicroTime fields to check, as paths under the object. */
  readonly microTimes?: readonly string[][];
  /** Longest name the API server accepts. */
  readonly maxName?: number;
}

export const RESOURCES = {
  cnvrgapps: {
    plural: "cnvrgapps",
    group: "mlops.cnvrg.io",
    version: "v1",
    kind: "CnvrgApp",
    listKind: "CnvrgAppList",
  },
  cronjobs: {
    plural: "cronjobs",
    group: "batch",
    version: "v1",
    kind: "CronJob",
    listKind: "CronJobList",
    maxName: 52,
  },
  jobs: { plural: "jobs", group: "batch", version: "v1", kind: "Job", listKind: "JobList", maxName: 63 },
  deployments: {
    plural: "deployments",
    group: "apps",
    version: "v1",
    kind: "Deployment",
    listKind: "DeploymentList",
  },
  persistentvolumeclaims: {
    plural: "persistentvolumeclaims",
    group: "",
    version: "v1",
    kind: "PersistentVolumeClaim",
    listKind: "PersistentVolumeClaimList",
  },
  leases: {
    plural: "leases",
    group: "coordination.k8s.io",
    version: "v1",
    kind: "Lease",
    listKind: "LeaseList",
    microTimes: [
      ["spec", "renewTime"],
      ["spec", "acquireTime"],
    ],
  },
  events: {
    plural: "events",
    group: "",
    version: "v1",
    kind: "Event",
    listKind: "EventList",
    microTimes: [["eventTime"]],
  },
  secrets: { plural: "secrets", group: "", version: "v1", kind: "Secret", listKind: "SecretList" },
  pods: { plural: "pods", group: "", version: "v1", kind: "Pod", listKind: "PodList" },
} as const satisfies Record<string, ResourceType>;

export type ResourceName = keyof typeof RESOURCES;

export type Verb = "create" | "replace" | "delete";

export interface WriteRecord {
  readonly verb: Verb;
  readonly resource: ResourceName;
  readonly namespace: string;
  readonly name: string;
}

export interface Fault {
  readonly method?: string;
  /** A path prefix (query excluded) or a pattern. */
  readonly path: string | RegExp;
  /** Only requests carrying this bearer token (see `kubeconfig(user)`): one client fails, the others do not. */
  readonly user?: string;
  /** How many matching requests fail. */
  count: number;
  /** `500`/`503`…: answer that status with a Status body; `timeout`: never answer; `reset`: drop the connection. */
  readonly mode: number | "timeout" | "reset";
}

interface WatchEvent {
  readonly type: "ADDED" | "MODIFIED" | "DELETED";
  readonly resource: ResourceName;
  readonly rv: number;
  readonly object: Obj;
}

interface Watcher {
  readonly resource: ResourceName;
  readonly namespace: string | undefined;
  readonly selector: Selector;
  readonly res: ServerResponse;
  bookmarks: boolean;
}

export interface FakeKubeOptions {
  /** Require `Authorization: Bearer <token>`. */
  readonly token?: string;
  /** What a successful DELETE answers: a Status (default) or the deleted object. */
  readonly deleteReturns?: "status" | "object";
  /** Watch events kept for replay. @default 1000 */
  readonly historySize?: number;
  /** Send a BOOKMARK to bookmark-enabled watches this often; 0 disables. @default 0 */
  readonly bookmarkIntervalMs?: number;
}

const LEASE_PATH = /^\/apis\/coordination\.k8s\.io\/v1\/namespaces\/[^/]+\/leases(\/|$)/;
const MICRO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export class FakeKubeApiServer {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  /** resource → "namespace/name" → object */
  private readonly objects = new Map<ResourceName, Map<string, Obj>>();
  private rv = 100;
  private history: WatchEvent[] = [];
  /** Events older than this version are gone: a watch from before it gets 410. */
  private compactedAt = 0;
  private readonly watchers = new Set<Watcher>();
  /** "namespace/pod" → its container's log: timestamped lines, whether it ended, and who follows it. */
  private readonly logs = new Map<string, PodLog>();
  private bookmarkTimer: NodeJS.Timeout | undefined;
  private readonly faults: Fault[] = [];
  /** Every write that reached the store through HTTP. */
  readonly writes: WriteRecord[] = [];
  /** Every request: method and URL. */
  readonly requests: Array<{ method: string; url: string }> = [];
  /**
   * Every write that reached the store through HTTP, in the order the store applied them, with the bearer token of
   * the client that made it (see `kubeconfig(user)`): which replica wrote what, before or after which other write.
   */
  readonly writeLog: Array<WriteRecord & { readonly user: string | undefined }> = [];
  /** The bearer token of the request being dispatched (dispatch is synchronous). */
  private requestUser: string | undefined;
  port = 0;

  constructor(private readonly options: FakeKubeOptions = {}) {
    for (const name of Object.keys(RESOURCES) as ResourceName[]) this.objects.set(name, new Map());
    this.server = createServer((req, res) => this.handle(req, res));
    this.server.on("connection", (socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as AddressInfo).port;
    if (this.options.bookmarkIntervalMs) {
      this.bookmarkTimer = setInterval(() => this.bookmark(), this.options.bookmarkIntervalMs);
      this.bookmarkTimer.unref();
    }
    return this;
  }

  async close(): Promise<void> {
    if (this.bookmarkTimer) clearInterval(this.bookmarkTimer);
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /**
   * A kubeconfig for this server; `user` is the bearer token the client sends (any is accepted unless the fake
   * was given a `token`), so faults can target one client. client-node reaches a plain-HTTP server only with `insecure-skip-tls-verify`
   * (docs/design.md §13).
   */
  kubeconfig(user?: string): string {
    return JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      "current-context": "fake",
      clusters: [{ name: "fake", cluster: { server: this.url, "insecure-skip-tls-verify": true } }],
      users: [{ name: "fake", user: { token: user ?? this.options.token ?? "fake-token" } }],
      contexts: [{ name: "fake", context: { cluster: "fake", user: "fake", namespace: "default" } }],
    });
  }

  /** Writes `kubeconfig(user)` to a temporary file and returns its path. */
  async kubeconfigFile(user?: string): Promise<string> {
    const file = join(tmpdir(), `capsule-fake-kube-${randomUUID()}.json`);
    await writeFile(file, this.kubeconfig(user));
    return file;
  }

  // ---- test controls -------------------------------------------------------------------------------------------

  /** Creates or replaces an object directly (no write recorded), emitting the watch event. */
  put(resource: ResourceName, object: Obj): Obj {
    const meta = object.metadata ?? {};
    const key = `${meta.namespace ?? ""}/${meta.name ?? ""}`;
    const store = this.store(resource);
    const existing = store.get(key);
    const stored = this.stamp(resource, structuredClone(object), existing);
    store.set(key, stored);
    this.emit(resource, existing ? "MODIFIED" : "ADDED", stored);
    return stored;
  }

  /** Creates or replaces a Secret from plain values (stored base64-encoded, as the API server keeps them). */
  putSecret(namespace: string, name: string, values: Record<string, string>): Obj {
    const data = Object.fromEntries(
      Object.entries(values).map(([k, v]) => [k, Buffer.from(v).toString("base64")]),
    );
    return this.put("secrets", { apiVersion: "v1", kind: "Secret", metadata: { namespace, name }, data });
  }

  /** Deletes an object directly (no write recorded), emitting the watch event. */
  remove(resource: ResourceName, namespace: string, name: string): boolean {
    const store = this.store(resource);
    const existing = store.get(`${namespace}/${name}`);
    if (!existing) return false;
    store.delete(`${namespace}/${name}`);
    this.emit(resource, "DELETED", {
      ...existing,
      metadata: { ...existing.metadata, resourceVersion: String(++this.rv) },
    });
    return true;
  }

  get(resource: ResourceName, namespace: string, name: string): Obj | undefined {
    const found = this.store(resource).get(`${namespace}/${name}`);
    return found && structuredClone(found);
  }

  list(resource: ResourceName, namespace?: string): Obj[] {
    return [...this.store(resource).values()]
      .filter((o) => namespace === undefined || o.metadata?.namespace === namespace)
      .map((o) => structuredClone(o));
  }

  /** Writes recorded so far, optionally only of one verb and/or resource. */
  writeCount(filter: { verb?: Verb; resource?: ResourceName } = {}): number {
    return this.writes.filter(
      (w) => (!filter.verb || w.verb === filter.verb) && (!filter.resource || w.resource === filter.resource),
    ).length;
  }

  resetCounters(): void {
    this.writes.length = 0;
    this.writeLog.length = 0;
    this.requests.length = 0;
  }

  /** The next `count` requests matching `path` (and `method`) fail with `mode`. */
  failNext(fault: Omit<Fault, "count"> & { count?: number }): void {
    this.faults.push({ ...fault, count: fault.count ?? 1 });
  }

  /**
   * Lease writes (create, replace) by `user` are never answered from now on and never applied, as when the API
   * server or the network to it hangs: the client sees nothing until it gives up. Reads still work. Undone by
   * `clearFaults()`.
   */
  hangLeaseUpdates(user: string): void {
    for (const method of ["PUT", "POST"])
      this.failNext({ method, path: LEASE_PATH, user, count: Number.MAX_SAFE_INTEGER, mode: "timeout" });
  }

  clearFaults(): void {
    this.faults.length = 0;
  }

  /** Forgets the watch history: a watch from any version before now gets 410 Gone. */
  compact(): void {
    this.compactedAt = this.rv + 1;
    this.history = [];
  }

  /** Ends every open watch, as an API server does at its timeout. */
  closeWatches(): void {
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
  }

  get openWatches(): number {
    return this.watchers.size;
  }

  /** Sends a BOOKMARK with the current version to every watch that asked for bookmarks. */
  bookmark(): void {
    for (const w of this.watchers) {
      if (!w.bookmarks) continue;
      const t = RESOURCES[w.resource];
      this.send(w, {
        type: "BOOKMARK",
        object: { apiVersion: apiVersion(t), kind: t.kind, metadata: { resourceVersion: String(this.rv) } },
      });
    }
  }

  /** Appends a line to a pod's log (as the kubelet does from the container's output) and wakes its followers. */
  appendLog(namespace: string, pod: string, line: string): void {
    const log = this.podLog(namespace, pod);
    const entry = { at: nanoTimestamp(), text: line };
    log.lines.push(entry);
    for (const follower of log.followers)
      follower.write(`${follower.timestamps ? `${entry.at} ` : ""}${line}\n`);
  }

  /** The container has started: its log exists (empty), so log requests no longer answer "waiting to start". */
  startLog(namespace: string, pod: string): void {
    this.podLog(namespace, pod);
  }

  /** The container has exited: follow streams of the pod end. */
  endLog(namespace: string, pod: string): void {
    const log = this.podLog(namespace, pod);
    log.ended = true;
    for (const follower of log.followers) follower.res.end();
    log.followers.clear();
  }

  /** Cuts every follow stream of the pod, as a proxy's idle timeout would, without ending the log. */
  cutLogStreams(namespace: string, pod: string): void {
    const log = this.podLog(namespace, pod);
    for (const follower of log.followers) follower.res.end();
    log.followers.clear();
  }

  private podLog(namespace: string, pod: string): PodLog {
    const key = `${namespace}/${pod}`;
    let log = this.logs.get(key);
    if (!log) this.logs.set(key, (log = { lines: [], ended: false, followers: new Set() }));
    return log;
  }

  /** Marks a Job finished, as the Job controller would. */
  finishJob(namespace: string, name: string, result: "Complete" | "Failed"): void {
    const job = this.get("jobs", namespace, name);
    if (!job) throw new Error(`fake: no Job ${namespace}/${name}`);
    const now = new Date().toISOString();
    this.put("jobs", {
      ...job,
      status: {
        ...(result === "Complete" ? { succeeded: 1 } : { failed: 1 }),
        conditions: [{ type: result, status: "True", lastTransitionTime: now, lastProbeTime: now }],
      },
    });
  }

  // ---- HTTP ----------------------------------------------------------------------------------------------------

  private record(write: WriteRecord): void {
    this.writes.push(write);
    this.writeLog.push({ ...write, user: this.requestUser });
  }

  private store(resource: ResourceName): Map<string, Obj> {
    const store = this.objects.get(resource);
    if (!store) throw new Error(`fake: unknown resource ${resource}`);
    return store;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const method = req.method ?? "GET";
    const url = new URL(req.url ?? "/", "http://fake");
    this.requests.push({ method, url: req.url ?? "/" });
    const fault = this.faults.find(
      (f) =>
        f.count > 0 &&
        (!f.method || f.method === method) &&
        (!f.user || req.headers.authorization === `Bearer ${f.user}`) &&
        (typeof f.path === "string" ? url.pathname.startsWith(f.path) : f.path.test(url.pathname)),
    );
    if (fault) {
      fault.count--;
      if (fault.mode === "timeout") return; // never answered; the socket closes with the server
      if (fault.mode === "reset") return void req.socket.destroy();
      return this.status(res, fault.mode, "InternalError", "fake: injected failure");
    }
    if (this.options.token && req.headers.authorization !== `Bearer ${this.options.token}`) {
      return this.status(res, 401, "Unauthorized", "Unauthorized");
    }
    const route = parsePath(url.pathname);
    if (!route) return this.status(res, 404, "NotFound", `the server could not find the requested resource`);
    const user = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    readJson(req)
      .then((body) => {
        this.requestUser = user;
        try {
          this.dispatch(method, url, route, body, res);
        } finally {
          this.requestUser = undefined;
        }
      })
      .catch((error: unknown) => this.status(res, 400, "BadRequest", `fake: ${(error as Error).message}`));
  }

  private dispatch(method: string, url: URL, route: Route, body: unknown, res: ServerResponse): void {
    const t = RESOURCES[route.resource];
    const q = url.searchParams;
    if (route.subresource !== undefined) {
      if (route.resource === "pods" && route.subresource === "log" && method === "GET" && route.namespace)
        return this.serveLog(route.namespace, route.name ?? "", q, res);
      return this.status(res, 404, "NotFound", `the server could not find the requested resource`);
    }
    if (method === "GET" && route.name === undefined) {
      if (q.get("watch") === "true" || q.get("watch") === "1") return this.watch(route, q, res);
      return this.listObjects(route, q, res);
    }
    if (route.namespace === undefined)
      return this.status(res, 405, "MethodNotAllowed", `${method} needs a namespace`);
    const ns = route.namespace;
    if (method === "GET") {
      const found = this.store(route.resource).get(`${ns}/${route.name}`);
      if (!found) return this.notFound(res, t, route.name ?? "");
      return json(res, 200, found);
    }
    if (method === "POST" && route.name === undefined) return this.create(route.resource, ns, body, res);
    if (method === "PUT" && route.name !== undefined)
      return this.replace(route.resource, ns, route.name, body, res);
    if (method === "DELETE" && route.name !== undefined)
      return this.delete(route.resource, ns, route.name, body, res);
    return this.status(
      res,
      405,
      "MethodNotAllowed",
      `the server does not allow this method on the requested resource`,
    );
  }

  /** GET …/pods/{name}/log: what the kubelet streams, as the API server relays it (text/plain). */
  private serveLog(namespace: string, name: string, q: URLSearchParams, res: ServerResponse): void {
    const pod = this.store("pods").get(`${namespace}/${name}`);
    if (!pod) return this.notFound(res, RESOURCES.pods, name);
    const container = q.get("container") ?? "";
    const log = this.logs.get(`${namespace}/${name}`);
    if (!log) {
      return this.status(
        res,
        400,
        "BadRequest",
        `container "${container}" in pod "${name}" is waiting to start: ContainerCreating`,
      );
    }
    const timestamps = q.get("timestamps") === "true";
    const since = q.get("sinceTime");
    res.writeHead(200, { "content-type": "text/plain", "transfer-encoding": "chunked" });
    for (const entry of log.lines) {
      // sinceTime has second precision on the wire: lines of that second are sent again, as the real server does.
      if (since && entry.at.slice(0, 19) < since.slice(0, 19)) continue;
      res.write(`${timestamps ? `${entry.at} ` : ""}${entry.text}\n`);
    }
    if (q.get("follow") !== "true" || log.ended) return void res.end();
    const follower = { res, timestamps, write: (text: string) => res.write(text) };
    log.followers.add(follower);
    res.on("close", () => log.followers.delete(follower));
  }

  private listObjects(route: Route, q: URLSearchParams, res: ServerResponse): void {
    const t = RESOURCES[route.resource];
    let selector: Selector;
    try {
      selector = parseSelector(q.get("labelSelector") ?? "");
    } catch (error) {
      return this.status(res, 400, "BadRequest", `unable to parse requirement: ${(error as Error).message}`);
    }
    let snapshot: number;
    let offset = 0;
    const token = q.get("continue");
    if (token) {
      try {
        const parsed = JSON.parse(Buffer.from(token, "base64url").toString()) as {
          rv: number;
          offset: number;
        };
        snapshot = parsed.rv;
        offset = parsed.offset;
      } catch {
        return this.status(res, 400, "BadRequest", "continue key is not valid");
      }
    } else snapshot = this.rv;
    const items = [...this.store(route.resource).entries()]
      .filter(([, o]) => route.namespace === undefined || o.metadata?.namespace === route.namespace)
      .filter(([, o]) => selector(o.metadata?.labels ?? {}))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, o]) => o);
    const limit = Number(q.get("limit") ?? "0");
    const page = limit > 0 ? items.slice(offset, offset + limit) : items.slice(offset);
    const more = limit > 0 && offset + limit < items.length;
    json(res, 200, {
      apiVersion: apiVersion(t),
      kind: t.listKind,
      metadata: {
        resourceVersion: String(snapshot),
        ...(more && {
          continue: Buffer.from(JSON.stringify({ rv: snapshot, offset: offset + limit })).toString(
            "base64url",
          ),
        }),
      },
      items: page,
    });
  }

  private watch(route: Route, q: URLSearchParams, res: ServerResponse): void {
    let selector: Selector;
    try {
      selector = parseSelector(q.get("labelSelector") ?? "");
    } catch (error) {
      return this.status(res, 400, "BadRequest", `unable to parse requirement: ${(error as Error).message}`);
    }
    const watcher: Watcher = {
      resource: route.resource,
      namespace: route.namespace,
      selector,
      res,
      bookmarks: q.get("allowWatchBookmarks") === "true",
    };
    res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
    res.flushHeaders(); // as the real server does: the client sees the stream open before any event
    const from = q.get("resourceVersion");
    if (from && from !== "0" && Number(from) < this.compactedAt) {
      // What a real API server does for a too-old version: a 200 stream carrying one ERROR event, then the end.
      res.end(
        `${JSON.stringify({
          type: "ERROR",
          object: statusBody(410, "Expired", `too old resource version: ${from} (${this.compactedAt})`),
        })}\n`,
      );
      return;
    }
    if (!from || from === "0") {
      for (const object of this.store(route.resource).values()) {
        if (this.matches(watcher, object)) this.send(watcher, { type: "ADDED", object });
      }
    } else {
      for (const event of this.history) {
        if (
          event.resource === route.resource &&
          event.rv > Number(from) &&
          this.matches(watcher, event.object)
        )
          this.send(watcher, { type: event.type, object: event.object });
      }
    }
    this.watchers.add(watcher);
    const timeout = Number(q.get("timeoutSeconds") ?? "0");
    const timer = timeout > 0 ? setTimeout(() => res.end(), timeout * 1000) : undefined;
    res.on("close", () => {
      if (timer) clearTimeout(timer);
      this.watchers.delete(watcher);
    });
  }

  private create(resource: ResourceName, namespace: string, body: unknown, res: ServerResponse): void {
    const t = RESOURCES[resource];
    const object = this.checkBody(t, body, res);
    if (!object) return;
    const meta = (object.metadata ??= {});
    if (meta.namespace !== undefined && meta.namespace !== namespace)
      return this.status(
        res,
        400,
        "BadRequest",
        "the namespace of the provided object does not match the namespace sent on the request",
      );
    meta.namespace = namespace;
    if (!meta.name && typeof meta["generateName"] === "string")
      meta.name = `${meta["generateName"]}${randomUUID().slice(0, 5)}`;
    const invalid = this.validate(t, object);
    if (invalid) return this.invalid(res, t, meta.name ?? "", invalid);
    const name = meta.name ?? "";
    const key = `${namespace}/${name}`;
    const store = this.store(resource);
    if (store.has(key))
      return this.status(
        res,
        409,
        "AlreadyExists",
        `${t.plural}.${t.group || "core"} "${name}" already exists`,
        t,
        name,
      );
    if (meta.resourceVersion)
      return this.status(
        res,
        400,
        "BadRequest",
        "resourceVersion should not be set on objects to be created",
      );
    const stored = this.stamp(resource, object, undefined);
    store.set(key, stored);
    this.record({ verb: "create", resource, namespace, name });
    this.emit(resource, "ADDED", stored);
    json(res, 201, stored);
  }

  private replace(
    resource: ResourceName,
    namespace: string,
    name: string,
    body: unknown,
    res: ServerResponse,
  ): void {
    const t = RESOURCES[resource];
    const object = this.checkBody(t, body, res);
    if (!object) return;
    const meta = (object.metadata ??= {});
    if (meta.name !== name)
      return this.status(res, 400, "BadRequest", "the name of the object does not match the name on the URL");
    if (meta.namespace !== undefined && meta.namespace !== namespace)
      return this.status(
        res,
        400,
        "BadRequest",
        "the namespace of the provided object does not match the namespace sent on the request",
      );
    meta.namespace = namespace;
    const invalid = this.validate(t, object);
    if (invalid) return this.invalid(res, t, name, invalid);
    const store = this.store(resource);
    const existing = store.get(`${namespace}/${name}`);
    if (!existing) return this.notFound(res, t, name);
    if (meta.resourceVersion !== undefined && meta.resourceVersion !== existing.metadata?.resourceVersion) {
      return this.status(
        res,
        409,
        "Conflict",
        `Operation cannot be fulfilled on ${t.plural}.${t.group || "core"} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
        t,
        name,
      );
    }
    if (
      resource === "deployments" &&
      JSON.stringify((existing["spec"] as { selector?: unknown } | undefined)?.selector) !==
        JSON.stringify((object["spec"] as { selector?: unknown } | undefined)?.selector)
    )
      return this.invalid(res, t, name, [
        { field: "spec.selector", message: "Invalid value: field is immutable" },
      ]);
    // Status is not changed through the main resource.
    if (existing["status"] !== undefined) object["status"] = existing["status"];
    else delete object["status"];
    const stored = this.stamp(resource, object, existing);
    store.set(`${namespace}/${name}`, stored);
    this.record({ verb: "replace", resource, namespace, name });
    this.emit(resource, "MODIFIED", stored);
    json(res, 200, stored);
  }

  private delete(
    resource: ResourceName,
    namespace: string,
    name: string,
    body: unknown,
    res: ServerResponse,
  ): void {
    const t = RESOURCES[resource];
    const store = this.store(resource);
    const existing = store.get(`${namespace}/${name}`);
    if (!existing) return this.notFound(res, t, name);
    const wanted = (body as { preconditions?: { resourceVersion?: string } } | undefined)?.preconditions
      ?.resourceVersion;
    if (wanted !== undefined && wanted !== existing.metadata?.resourceVersion) {
      return this.status(
        res,
        409,
        "Conflict",
        `Operation cannot be fulfilled on ${t.plural}.${t.group || "core"} "${name}": Precondition failed: ResourceVersion in precondition: ${wanted}, ResourceVersion in object meta: ${existing.metadata?.resourceVersion}`,
        t,
        name,
      );
    }
    store.delete(`${namespace}/${name}`);
    this.record({ verb: "delete", resource, namespace, name });
    const gone = { ...existing, metadata: { ...existing.metadata, resourceVersion: String(++this.rv) } };
    this.emit(resource, "DELETED", gone);
    if (this.options.deleteReturns === "object") return json(res, 200, gone);
    json(res, 200, {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Success",
      details: { name, group: t.group, kind: t.plural, uid: existing.metadata?.["uid"] },
    });
  }

  private checkBody(t: ResourceType, body: unknown, res: ServerResponse): Obj | undefined {
    if (body === null || typeof body !== "object" || Array.isArray(body)) {
      this.status(res, 400, "BadRequest", "the request body must be an object");
      return undefined;
    }
    const object = structuredClone(body) as Obj;
    if (object.kind !== undefined && object.kind !== t.kind) {
      this.status(
        res,
        400,
        "BadRequest",
        `${t.plural} in version "${t.version}" cannot be handled as a ${object.kind}`,
      );
      return undefined;
    }
    if (object.apiVersion !== undefined && object.apiVersion !== apiVersion(t)) {
      this.status(
        res,
        400,
        "BadRequest",
        `the API version in the data (${object.apiVersion}) does not match the expected API version (${apiVersion(t)})`,
      );
      return undefined;
    }
    for (const path of t.microTimes ?? []) {
      let value: unknown = object;
      for (const step of path) value = (value as Record<string, unknown> | undefined)?.[step];
      if (value !== undefined && (typeof value !== "string" || !MICRO_TIME.test(value))) {
        this.status(
          res,
          400,
          "BadRequest",
          `parsing time ${JSON.stringify(value)} as "2006-01-02T15:04:05.000000Z07:00": cannot parse`,
        );
        return undefined;
      }
    }
    return { ...object, apiVersion: apiVersion(t), kind: t.kind };
  }

  /** The causes of a 422, or undefined when the object is valid. */
  private validate(t: ResourceType, object: Obj): Array<{ field: string; message: string }> | undefined {
    const causes: Array<{ field: string; message: string }> = [];
    const name = object.metadata?.name;
    if (!name)
      causes.push({ field: "metadata.name", message: "Required value: name or generateName is required" });
    else if (!DNS_SUBDOMAIN.test(name) || name.length > 253)
      causes.push({
        field: "metadata.name",
        message: `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'`,
      });
    else if (t.maxName !== undefined && name.length > t.maxName)
      causes.push({
        field: "metadata.name",
        message: `Invalid value: "${name}": must be no more than ${t.maxName} characters`,
      });
    for (const [key, value] of Object.entries(object.metadata?.labels ?? {})) {
      if (
        typeof value !== "string" ||
        value.length > 63 ||
        !/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(value)
      )
        causes.push({ field: `metadata.labels`, message: `Invalid value: "${String(value)}": label ${key}` });
    }
    if (
      t.kind === "CronJob" &&
      typeof (object["spec"] as { schedule?: unknown } | undefined)?.schedule !== "string"
    )
      causes.push({ field: "spec.schedule", message: "Required value" });
    if (t.kind === "Job" && !(object["spec"] as { template?: unknown } | undefined)?.template)
      causes.push({ field: "spec.template", message: "Required value" });
    if (t.kind === "Deployment") causes.push(...deploymentCauses(object));
    if (t.kind === "PersistentVolumeClaim") causes.push(...claimCauses(object));
    if (t.kind === "Event") {
      const involved = object["involvedObject"] as { namespace?: string } | undefined;
      if (!involved) causes.push({ field: "involvedObject", message: "Required value" });
      else if (involved.namespace !== object.metadata?.namespace)
        causes.push({
          field: "involvedObject.namespace",
          message: "Invalid value: does not match event.namespace",
        });
    }
    return causes.length > 0 ? causes : undefined;
  }

  /** Assigns a new resourceVersion (and uid, creationTimestamp, generation on create). */
  private stamp(resource: ResourceName, object: Obj, existing: Obj | undefined): Obj {
    const meta = (object.metadata ??= {});
    const old = existing?.metadata ?? {};
    meta.resourceVersion = String(++this.rv);
    meta["uid"] = old["uid"] ?? randomUUID();
    meta["creationTimestamp"] =
      old["creationTimestamp"] ?? new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
    const t = RESOURCES[resource];
    const generation = typeof old["generation"] === "number" ? old["generation"] : 0;
    meta["generation"] = generation + 1;
    object.apiVersion = apiVersion(t);
    object.kind = t.kind;
    return object;
  }

  private emit(resource: ResourceName, type: WatchEvent["type"], object: Obj): void {
    const rv = Number(object.metadata?.resourceVersion ?? this.rv);
    this.history.push({ type, resource, rv, object: structuredClone(object) });
    const max = this.options.historySize ?? 1000;
    if (this.history.length > max) {
      const dropped = this.history.splice(0, this.history.length - max);
      this.compactedAt = Math.max(this.compactedAt, (dropped.at(-1)?.rv ?? 0) + 1);
    }
    for (const w of this.watchers) {
      if (w.resource === resource && this.matches(w, object)) this.send(w, { type, object });
    }
  }

  private matches(w: Watcher, object: Obj): boolean {
    return (
      (w.namespace === undefined || object.metadata?.namespace === w.namespace) &&
      w.selector(object.metadata?.labels ?? {})
    );
  }

  private send(w: Watcher, event: { type: string; object: unknown }): void {
    if (!w.res.writableEnded) w.res.write(`${JSON.stringify(event)}\n`);
  }

  private notFound(res: ServerResponse, t: ResourceType, name: string): void {
    this.status(res, 404, "NotFound", `${t.plural}.${t.group || "core"} "${name}" not found`, t, name);
  }

  private invalid(
    res: ServerResponse,
    t: ResourceType,
    name: string,
    causes: Array<{ field: string; message: string }>,
  ): void {
    const body = statusBody(
      422,
      "Invalid",
      `${t.kind}.${t.group || "core"} "${name}" is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join(", ")}`,
      t,
      name,
    );
    json(res, 422, {
      ...body,
      details: { ...body.details, causes: causes.map((c) => ({ reason: "FieldValueInvalid", ...c })) },
    });
  }

  private status(
    res: ServerResponse,
    code: number,
    reason: string,
    message: string,
    t?: ResourceType,
    name?: string,
  ): void {
    json(res, code, statusBody(code, reason, message, t, name));
  }
}

interface Route {
  readonly resource: ResourceName;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
  /** `log` in …/pods/{name}/log. */
  readonly subresource?: string;
}

interface PodLog {
  readonly lines: Array<{ readonly at: string; readonly text: string }>;
  ended: boolean;
  readonly followers: Set<{ res: ServerResponse; timestamps: boolean; write: (text: string) => void }>;
}

let lastNano = 0n;
/** RFC3339Nano as the kubelet writes it, strictly increasing so every line has its own stamp. */
function nanoTimestamp(): string {
  let now = BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
  if (now <= lastNano) now = lastNano + 1n;
  lastNano = now;
  const seconds = new Date(Number(now / 1_000_000_000n) * 1000).toISOString().slice(0, 19);
  return `${seconds}.${String(now % 1_000_000_000n).padStart(9, "0")}Z`;
}

type Cause = { field: string; message: string };

/** What apps/v1 validation refuses of a Deployment, as far as capsule could get it wrong. */
function deploymentCauses(object: Obj): Cause[] {
  const spec = object["spec"] as
    | {
        selector?: { matchLabels?: Record<string, string> };
        strategy?: { type?: string; rollingUpdate?: unknown };
        template?: { metadata?: { labels?: Record<string, string> }; spec?: { restartPolicy?: string } };
      }
    | undefined;
  const causes: Cause[] = [];
  const selector = spec?.selector?.matchLabels ?? {};
  if (Object.keys(selector).length === 0)
    causes.push({
      field: "spec.selector",
      message: "Invalid value: empty selector is invalid for deployment",
    });
  if (!spec?.template) causes.push({ field: "spec.template", message: "Required value" });
  const labels = spec?.template?.metadata?.labels ?? {};
  if (Object.entries(selector).some(([k, v]) => labels[k] !== v))
    causes.push({
      field: "spec.template.metadata.labels",
      message: "Invalid value: `selector` does not match template `labels`",
    });
  const restart = spec?.template?.spec?.restartPolicy;
  if (restart !== undefined && restart !== "Always")
    causes.push({
      field: "spec.template.spec.restartPolicy",
      message: `Unsupported value: "${restart}": supported values: "Always"`,
    });
  if (spec?.strategy?.type === "Recreate" && spec.strategy.rollingUpdate !== undefined)
    causes.push({
      field: "spec.strategy.rollingUpdate",
      message: "Forbidden: may not be specified when strategy `type` is 'Recreate'",
    });
  return causes;
}

function claimCauses(object: Obj): Cause[] {
  const spec = object["spec"] as
    { accessModes?: unknown[]; resources?: { requests?: { storage?: unknown } } } | undefined;
  const causes: Cause[] = [];
  if (!spec?.accessModes?.length) causes.push({ field: "spec.accessModes", message: "Required value" });
  if (typeof spec?.resources?.requests?.storage !== "string")
    causes.push({ field: "spec.resources[storage]", message: "Required value" });
  return causes;
}

/** `/api/v1/...` and `/apis/<group>/<version>/...`, namespaced or cluster-wide. */
function parsePath(pathname: string): Route | undefined {
  const parts = pathname.split("/").filter(Boolean).map(decodeURIComponent);
  let group: string;
  let rest: string[];
  if (parts[0] === "api" && parts[1] === "v1") {
    group = "";
    rest = parts.slice(2);
  } else if (parts[0] === "apis" && parts.length >= 3) {
    group = parts[1] ?? "";
    if (parts[2] !== "v1") return undefined;
    rest = parts.slice(3);
  } else return undefined;
  let namespace: string | undefined;
  if (rest[0] === "namespaces" && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  if (rest.length < 1 || rest.length > 3) return undefined;
  const resource = (Object.keys(RESOURCES) as ResourceName[]).find(
    (r) => RESOURCES[r].plural === rest[0] && RESOURCES[r].group === group,
  );
  if (!resource) return undefined;
  return { resource, namespace, name: rest[1], ...(rest[2] !== undefined && { subresource: rest[2] }) };
}

type Selector = (labels: Record<string, string>) => boolean;

/** Equality- and set-based label selectors, as `kubectl -l` accepts them. */
export function parseSelector(text: string): Selector {
  const requirements: Selector[] = [];
  // Split on commas outside parentheses.
  const parts: string[] = [];
  let depth = 0;
  let current = "";
  for (const ch of text) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      parts.push(current);
      current = "";
    } else current += ch;
  }
  if (current.trim()) parts.push(current);
  for (const raw of parts) {
    const part = raw.trim();
    let m: RegExpExecArray | null;
    if ((m = /^([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)$/.exec(part))) {
      const [, key, op, value] = m as unknown as [string, string, string, string];
      requirements.push(op === "!=" ? (l) => l[key] !== value : (l) => l[key] === value);
    } else if ((m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(part))) {
      const [, key, op, list] = m as unknown as [string, string, string, string];
      const values = new Set(list.split(",").map((v) => v.trim()));
      requirements.push(
        op === "in"
          ? (l) => l[key] !== undefined && values.has(l[key])
          : (l) => l[key] === undefined || !values.has(l[key]),
      );
    } else if ((m = /^!([\w./-]+)$/.exec(part))) {
      const key = m[1] ?? "";
      requirements.push((l) => l[key] === undefined);
    } else if ((m = /^([\w./-]+)$/.exec(part))) {
      const key = m[1] ?? "";
      requirements.push((l) => l[key] !== undefined);
    } else throw new Error(`invalid selector ${JSON.stringify(part)}`);
  }
  return (labels) => requirements.every((r) => r(labels));
}

function apiVersion(t: ResourceType): string {
  return t.group ? `${t.group}/${t.version}` : t.version;
}

function statusBody(code: number, reason: string, message: string, t?: ResourceType, name?: string) {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    details: t ? { name, group: t.group, kind: t.plural } : {},
    code,
  };
}

function json(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  if (chunks.length === 0) return undefined;
  const text = Buffer.concat(chunks).toString("utf8");
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new Error("the request body is not valid JSON");
  }
}
