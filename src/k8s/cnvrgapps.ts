/**
 * The one place capsule lists and watches CnvrgApps on a Kubernetes API server, through the shared `KubeClient` (its
 * kube context, per-request timeout and `KubeApiError`s). Pages through large lists so thousands of apps do not
 * arrive as one response.
 */
import http from "node:http";
import https from "node:https";
import { createInterface } from "node:readline";
import { messageOf } from "../domain/errors.js";
import { redact } from "../redact.js";
import { CNVRGAPP } from "../domain/cnvrgapp.js";
import { KubeApiError, type KubeClient } from "./kube-client.js";

const PAGE_SIZE = 500;

/** One consistent list of CnvrgApps and the resourceVersion a watch can continue from. */
export interface CnvrgAppList {
  readonly items: unknown[];
  readonly resourceVersion: string | undefined;
}

/** Lists CnvrgApps through a shared client (paged); errors are `KubeApiError`s. */
export async function listCnvrgAppsVersioned(client: KubeClient, namespace?: string): Promise<CnvrgAppList> {
  const { group, version, plural } = CNVRGAPP;
  const items: unknown[] = [];
  let next: string | undefined;
  let resourceVersion: string | undefined;
  const operation = `list CnvrgApps${namespace ? ` in ${namespace}` : ""}`;
  do {
    const page = { group, version, plural, limit: PAGE_SIZE, ...(next && { _continue: next }) };
    const list = (await client.call(operation, () =>
      namespace
        ? client.custom.listNamespacedCustomObject({ ...page, namespace })
        : client.custom.listClusterCustomObject(page),
    )) as { items?: unknown[]; metadata?: { continue?: string; resourceVersion?: string } };
    items.push(...(list.items ?? []));
    // The first page's version is the snapshot every later page belongs to.
    resourceVersion ??= list.metadata?.resourceVersion;
    next = list.metadata?.continue || undefined;
  } while (next);
  return { items, resourceVersion };
}

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

export interface CnvrgAppWatchHandlers {
  /** A change (or a bookmark); `resourceVersion` is where a new watch would continue. */
  readonly onEvent: (type: WatchEventType, resourceVersion: string | undefined) => void;
  /**
   * The watch ended: `expired` when the server no longer has the history asked for (410 Gone: relist first),
   * otherwise with the error that ended it, or undefined when the server simply closed it (continue from the last
   * version).
   */
  readonly onEnd: (end: { expired: boolean; error?: Error }) => void;
}

/**
 * Streams CnvrgApp changes from `resourceVersion` (bookmarks on). Resolves at once to a function that stops the
 * watch — also while the request is still waiting for the server's first byte, which client-node's `Watch` cannot
 * abort. The server is asked to close the stream after `timeoutSeconds`, so a silently dead connection is replaced;
 * `connectTimeoutMs` bounds the wait for the response headers. Uses client-node's kube config for TLS, auth and the
 * agent, with node:http(s) for the stream itself.
 */
export async function watchCnvrgApps(
  client: KubeClient,
  options: {
    namespace?: string;
    resourceVersion?: string;
    timeoutSeconds: number;
    connectTimeoutMs?: number;
  },
  handlers: CnvrgAppWatchHandlers,
): Promise<() => void> {
  const { group, version, plural } = CNVRGAPP;
  const cluster = client.kubeConfig.getCurrentCluster();
  if (!cluster)
    throw new KubeApiError("watch CnvrgApps", undefined, undefined, "watch CnvrgApps: no current cluster");
  const url = new URL(
    options.namespace
      ? `${cluster.server}/apis/${group}/${version}/namespaces/${options.namespace}/${plural}`
      : `${cluster.server}/apis/${group}/${version}/${plural}`,
  );
  url.searchParams.set("watch", "true");
  url.searchParams.set("allowWatchBookmarks", "true");
  url.searchParams.set("timeoutSeconds", String(options.timeoutSeconds));
  if (options.resourceVersion !== undefined) url.searchParams.set("resourceVersion", options.resourceVersion);
  const requestOptions: https.RequestOptions = {};
  await client.kubeConfig.applyToHTTPSOptions(requestOptions);

  const controller = new AbortController();
  let ended = false;
  const end = (result: { expired: boolean; error?: Error }) => {
    if (ended) return;
    ended = true;
    clearTimeout(connectTimer);
    controller.abort();
    handlers.onEnd(result);
  };
  const fail = (status: number | undefined, message: string) =>
    end({
      expired: status === 410,
      error: new KubeApiError("watch CnvrgApps", status, undefined, redact(`watch CnvrgApps: ${message}`)),
    });
  const connectTimer = setTimeout(
    () => fail(undefined, "no answer in time"),
    options.connectTimeoutMs ?? client.requestTimeoutMs,
  );
  const request = (url.protocol === "https:" ? https : http).request(url, {
    ...requestOptions,
    method: "GET",
    headers: { ...requestOptions.headers, accept: "application/json" },
    signal: controller.signal,
  });
  request.on("error", (error) => {
    if (!ended) fail(undefined, messageOf(error));
  });
  request.on("response", (response) => {
    clearTimeout(connectTimer);
    if (response.statusCode !== 200) {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body = (body + chunk).slice(0, 4096)));
      response.on("end", () => {
        let message = `HTTP ${response.statusCode}`;
        try {
          message = (JSON.parse(body) as { message?: string }).message ?? message;
        } catch {
          // not a Status body
        }
        fail(response.statusCode, message);
      });
      return;
    }
    const lines = createInterface({ input: response, crlfDelay: Infinity });
    lines.on("line", (line) => {
      if (ended || !line.trim()) return;
      let event: {
        type?: string;
        object?: { code?: number; message?: string; metadata?: { resourceVersion?: string } };
      };
      try {
        event = JSON.parse(line) as typeof event;
      } catch {
        return fail(undefined, "unparseable watch event");
      }
      if (event.type === "ERROR") return fail(event.object?.code, event.object?.message ?? "error event");
      handlers.onEvent(event.type as WatchEventType, event.object?.metadata?.resourceVersion);
    });
    // readline re-emits the response's errors: both need a listener, or an abort crashes the process.
    lines.on("error", (error) => fail(undefined, messageOf(error)));
    response.on("error", (error) => fail(undefined, messageOf(error)));
    let complete = false;
    response.on("end", () => {
      complete = true;
      end({ expired: false });
    });
    // Closed without its end: the connection broke (retried with backoff, not at once).
    response.on("close", () => (complete ? end({ expired: false }) : fail(undefined, "connection closed")));
  });
  request.end();
  return () => {
    ended = true;
    clearTimeout(connectTimer);
    controller.abort();
  };
}
