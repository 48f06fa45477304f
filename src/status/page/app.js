/**
 * The status page: reads the status JSON API (nothing else) and draws clusters → targets → backups, newest first,
 * with a small SVG chart of size and duration per target, the WAL lag of each target that streams WAL (pitr), and a
 * detail view per backup (`#/backup/<cluster>/<id>`).
 * Everything from the bucket goes in through textContent, never HTML, so a statefile cannot inject markup.
 * With a token configured the API needs it: the operator types it once and it stays in sessionStorage (ADR 0009).
 */

const TOKEN_KEY = "capsule.token";
/** Backups drawn in a target's chart. */
const CHART_POINTS = 30;
/** Rows of a target's table; older backups are counted, not drawn (`capsule <engine> --list` has them all). */
const TABLE_ROWS = 25;

const authRequired = document.documentElement.dataset["auth"] === "token";
const statusLine = must("status");
const alertBox = must("alert");
const tokenForm = /** @type {HTMLFormElement} */ (must("token-form"));
const tokenInput = /** @type {HTMLInputElement} */ (must("token"));
const forgetButton = must("forget-token");
const view = must("view");

/** @param {string} id */
function must(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the page has no #${id}`);
  return element;
}

class ApiError extends Error {
  /** @param {number} status @param {string} code @param {string} message */
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

/** @param {string} path */
async function api(path) {
  /** @type {Record<string, string>} */
  const headers = { accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers["authorization"] = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(path, { headers, cache: "no-store" });
  } catch {
    throw new ApiError(0, "network", "the status server does not answer");
  }
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    const error = body && body.error ? body.error : {};
    throw new ApiError(res.status, error.code || "http", error.message || `HTTP ${res.status}`);
  }
  return body;
}

/**
 * An element with attributes and children (strings become text nodes).
 * @param {string} tag @param {Record<string, string | undefined>} [attrs] @param {...(Node | string | null | undefined)} children
 */
function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs))
    if (value !== undefined) element.setAttribute(name, value);
  for (const child of children) if (child !== null && child !== undefined) element.append(child);
  return element;
}

/** @param {string} tag @param {Record<string, string | number>} [attrs] */
function svg(tag, attrs = {}) {
  const element = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  return element;
}

/** @param {number | null | undefined} bytes */
function formatBytes(bytes) {
  if (bytes === null || bytes === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** @param {number | null | undefined} seconds */
function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 90) return `${seconds.toFixed(1)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** @param {string | null | undefined} iso */
function age(iso) {
  if (!iso) return "—";
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  let text;
  if (seconds < 60) text = "just now";
  else if (seconds < 3600) text = `${Math.floor(seconds / 60)} min ago`;
  else if (seconds < 172800) text = `${Math.floor(seconds / 3600)} h ago`;
  else text = `${Math.floor(seconds / 86400)} d ago`;
  return h("time", { datetime: iso, title: iso }, text);
}

/** @param {{startedAt: string | null, finishedAt: string | null}} backup */
function durationOf(backup) {
  if (!backup.startedAt || !backup.finishedAt) return null;
  return Math.max(0, (Date.parse(backup.finishedAt) - Date.parse(backup.startedAt)) / 1000);
}

/** A badge says its state in words; colour only repeats it. @param {string} kind @param {string | null} value */
function badge(kind, value) {
  const text = value ?? "unknown";
  return h("span", { class: `badge ${kind}-${text}` }, text);
}

/** @param {string} message */
function showStatus(message) {
  statusLine.textContent = message;
}

/** @param {unknown} error */
function showError(error) {
  const e = error instanceof ApiError ? error : new ApiError(0, "internal", String(error));
  if (e.status === 401) {
    const refused = sessionStorage.getItem(TOKEN_KEY) !== null;
    sessionStorage.removeItem(TOKEN_KEY);
    askForToken(refused ? "That token was refused; enter the current one." : "The API needs a token.");
    return;
  }
  let headline = "The status API failed";
  if (e.code === "bucket_error") headline = "The bucket is unreachable";
  else if (e.code === "no_bucket") headline = "No bucket is configured";
  else if (e.code === "network") headline = "The status server is unreachable";
  alertBox.replaceChildren(h("strong", {}, `${headline}: `), e.message);
  alertBox.dataset["code"] = e.code;
  alertBox.hidden = false;
  showStatus("");
}

/** @param {string} why */
function askForToken(why) {
  view.replaceChildren();
  showStatus(why);
  tokenForm.hidden = false;
  forgetButton.hidden = true;
  tokenInput.focus();
}

/**
 * A line of points, oldest left; one circle per backup, each with its own tooltip.
 * @param {string} label @param {Array<{id: string, value: number, text: string}>} points
 */
function sparkline(label, points) {
  const width = 240;
  const height = 56;
  const pad = 6;
  const max = Math.max(...points.map((p) => p.value), 0) || 1;
  const step = points.length > 1 ? (width - 2 * pad) / (points.length - 1) : 0;
  const xy = points.map((p, i) => ({
    ...p,
    x: points.length > 1 ? pad + i * step : width / 2,
    y: height - pad - (p.value / max) * (height - 2 * pad),
  }));
  const chart = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "img",
    class: "spark",
    "data-points": points.length,
  });
  const title = svg("title");
  title.textContent = `${label} of the last ${points.length} succeeded backups, oldest first; newest ${points.at(-1)?.text ?? "none"}`;
  chart.append(title);
  chart.append(svg("line", { x1: pad, x2: width - pad, y1: height - pad, y2: height - pad, class: "axis" }));
  if (xy.length > 1)
    chart.append(svg("polyline", { points: xy.map((p) => `${p.x},${p.y}`).join(" "), class: "trend" }));
  for (const p of xy) {
    const dot = svg("circle", { cx: p.x, cy: p.y, r: 3, class: "point", "data-backup-id": p.id });
    const tip = svg("title");
    tip.textContent = `${p.id}: ${p.text}`;
    dot.append(tip);
    chart.append(dot);
  }
  return h("figure", { class: "chart" }, chart, h("figcaption", {}, label));
}

/** @param {Array<any>} backups newest first */
function charts(backups) {
  const good = backups
    .filter((b) => b.state === "succeeded")
    .slice(0, CHART_POINTS)
    .reverse();
  if (good.length === 0) return h("p", { class: "muted" }, "No succeeded backup to chart.");
  return h(
    "div",
    { class: "charts" },
    sparkline(
      "Size",
      good.map((b) => ({ id: b.backupId, value: b.sizeBytes ?? 0, text: formatBytes(b.sizeBytes) })),
    ),
    sparkline(
      "Duration",
      good.map((b) => ({ id: b.backupId, value: durationOf(b) ?? 0, text: formatDuration(durationOf(b)) })),
    ),
  );
}

/**
 * A pitr target's WAL lag (the status API's `/wal` item), or why its head could not be read.
 * @param {any} lag
 */
function walLagView(lag) {
  if (lag.error) return h("p", { class: "wal-lag error", "data-wal-lag": "error" }, `WAL head: ${lag.error}`);
  return h(
    "p",
    {
      class: "wal-lag",
      "data-wal-lag-seconds": lag.lagSeconds,
      "data-wal-lag-bytes": lag.lagBytes,
    },
    "WAL lag: ",
    h("strong", {}, formatDuration(lag.lagSeconds)),
    ` · ${formatBytes(lag.lagBytes)} not yet in the bucket · restorable up to ${lag.coveredUntil}`,
    ` (timeline ${lag.timeline}, LSN ${lag.archivedLsn}) · head written `,
    age(lag.updatedAt),
  );
}

/**
 * @param {string} cluster @param {string} key @param {Array<any>} backups newest first
 * @param {any} [lag] the target's WAL lag, when it streams WAL
 */
function targetView(cluster, key, backups, lag) {
  const first = backups[0];
  const named = first.target !== null;
  const lastGood = backups.find((b) => b.state === "succeeded");
  const heading = named ? first.target : "Unreadable statefiles";
  const headingId = `t-${cluster}-${key}`.replace(/[^A-Za-z0-9_-]/g, "_");
  const summary = named
    ? h(
        "p",
        { class: "summary" },
        "Last success: ",
        lastGood ? age(lastGood.finishedAt) : h("strong", {}, "never"),
        " · newest backup ",
        lastGood ? badge("verification", lastGood.verification) : "—",
        ` · ${backups.length} in the bucket`,
      )
    : h(
        "p",
        { class: "summary" },
        "These statefiles cannot be parsed; `capsule <engine> --check` lists them.",
      );
  const rows = backups
    .slice(0, TABLE_ROWS)
    .map((b) =>
      h(
        "tr",
        { "data-backup-id": b.backupId, "data-state": b.state },
        h(
          "th",
          { scope: "row" },
          h(
            "a",
            { href: `#/backup/${encodeURIComponent(cluster)}/${encodeURIComponent(b.backupId)}` },
            b.backupId,
          ),
        ),
        h(
          "td",
          {},
          badge("state", b.state),
          b.error || b.problem ? h("div", { class: "error" }, b.error ?? b.problem) : null,
        ),
        h("td", {}, age(b.startedAt)),
        h("td", { class: "num" }, formatBytes(b.sizeBytes)),
        h("td", { class: "num" }, formatDuration(b.state === "succeeded" ? durationOf(b) : null)),
        h("td", {}, b.verification ? badge("verification", b.verification) : "—"),
        h("td", {}, b.trigger ?? "—"),
      ),
    );
  const more =
    backups.length > TABLE_ROWS
      ? h(
          "p",
          { class: "muted" },
          `and ${backups.length - TABLE_ROWS} older backups (capsule ${first.engine} --list)`,
        )
      : null;
  return h(
    "article",
    {
      class: "target",
      "aria-labelledby": headingId,
      "data-target": first.target ?? "",
      "data-engine": first.engine,
    },
    h("h3", { id: headingId }, heading, " ", h("span", { class: "engine" }, first.engine)),
    summary,
    lag ? walLagView(lag) : null,
    named ? charts(backups) : null,
    h(
      "table",
      {},
      h("caption", { class: "visually-hidden" }, `Backups of ${heading}, newest first`),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...["Backup", "Status", "Started", "Size", "Duration", "Verification", "Trigger"].map((c) =>
            h("th", { scope: "col" }, c),
          ),
        ),
      ),
      h("tbody", {}, ...rows),
    ),
    more,
  );
}

async function renderOverview() {
  showStatus("Loading…");
  const clusters = /** @type {{items: Array<{cluster: string}>}} */ (await api("/api/v1/clusters")).items;
  const lists = await Promise.all(
    clusters.map(async ({ cluster }) => ({
      cluster,
      items: /** @type {Array<any>} */ (
        (await api(`/api/v1/clusters/${encodeURIComponent(cluster)}/backups`)).items
      ),
      // The backups are the page; WAL lag that cannot be read is left out rather than hiding them.
      wal: /** @type {Array<any>} */ (
        await api(`/api/v1/clusters/${encodeURIComponent(cluster)}/wal`).then(
          (body) => body.items,
          () => [],
        )
      ),
    })),
  );
  const sections = lists.map(({ cluster, items, wal }) => {
    const lagOf = new Map(wal.map((lag) => [`${lag.target}/${lag.engine}`, lag]));
    /** @type {Map<string, Array<any>>} */
    const byTarget = new Map();
    for (const item of items) {
      const key = item.target === null ? "~corrupt" : `${item.target}/${item.engine}`;
      byTarget.set(key, [...(byTarget.get(key) ?? []), item]);
    }
    const keys = [...byTarget.keys()].sort();
    const id = `c-${cluster}`.replace(/[^A-Za-z0-9_-]/g, "_");
    return h(
      "section",
      { class: "cluster", "aria-labelledby": id, "data-cluster": cluster },
      h("h2", { id }, cluster),
      ...keys.map((key) => {
        const backups = byTarget.get(key) ?? [];
        return targetView(cluster, key, backups, lagOf.get(key));
      }),
    );
  });
  view.replaceChildren(...sections);
  showStatus(
    clusters.length === 0
      ? "The bucket holds no backups yet."
      : `${clusters.length} cluster(s); read ${new Date().toLocaleTimeString()}.`,
  );
}

/** @param {string} cluster @param {string} backupId */
async function renderDetail(cluster, backupId) {
  showStatus("Loading…");
  const b = await api(
    `/api/v1/clusters/${encodeURIComponent(cluster)}/backups/${encodeURIComponent(backupId)}`,
  );
  /** @type {Array<[string, Node | string]>} */
  const facts = [
    ["Cluster", b.cluster],
    ["Target", b.target ?? "—"],
    ["Engine", b.engine],
    ["Status", badge("state", b.state)],
    ["Phase", b.phase ?? "—"],
    ["Trigger", b.trigger ?? "—"],
    ["Started", b.startedAt ?? "—"],
    ["Finished", b.finishedAt ?? "—"],
    ["Duration", formatDuration(durationOf(b))],
    ["Size", formatBytes(b.sizeBytes)],
    ["SHA-256", b.sha256 ?? "—"],
    ["Verification", b.verification ? badge("verification", b.verification) : "—"],
    ["Key", b.key],
  ];
  if (b.error) facts.push(["Error", b.error]);
  if (b.problem) facts.push(["Problem", b.problem]);
  view.replaceChildren(
    h(
      "section",
      { class: "detail", "aria-labelledby": "detail-title", "data-backup-id": b.backupId },
      h("p", {}, h("a", { href: "#/" }, "← All backups")),
      h("h2", { id: "detail-title" }, b.backupId),
      h("dl", {}, ...facts.flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, value)])),
      h("h3", {}, "Statefile"),
      b.statefile
        ? h("pre", { class: "statefile", tabindex: "0" }, JSON.stringify(b.statefile, null, 2))
        : h("p", { class: "error" }, "The statefile cannot be read."),
    ),
  );
  showStatus(`Backup ${b.backupId}.`);
  must("main").focus();
}

async function render() {
  alertBox.hidden = true;
  if (authRequired && !sessionStorage.getItem(TOKEN_KEY)) {
    askForToken("The API needs a token.");
    return;
  }
  tokenForm.hidden = true;
  forgetButton.hidden = !sessionStorage.getItem(TOKEN_KEY);
  const detail = /^#\/backup\/([^/]+)\/([^/]+)$/.exec(location.hash);
  try {
    if (detail) await renderDetail(decodeURIComponent(detail[1] ?? ""), decodeURIComponent(detail[2] ?? ""));
    else await renderOverview();
  } catch (error) {
    view.replaceChildren();
    showError(error);
  }
}

tokenForm.addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, tokenInput.value.trim());
  tokenInput.value = "";
  void render();
});
forgetButton.addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  void render();
});
must("refresh").addEventListener("click", () => void render());
window.addEventListener("hashchange", () => void render());
void render();
