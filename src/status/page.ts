/**
 * The status page's static files: an HTML shell, a script and a stylesheet from `src/status/page/` (copied beside the
 * compiled code by `npm run build`), served from memory with no CDN, so the page works air-gapped. The files hold no
 * data: the script reads the JSON API, with the operator's token when one is configured (ADR 0009). The shell is
 * public, which is why it only says *whether* a token is needed, never anything about the bucket.
 */
import { readPageFile } from "./page-files.js";

export interface PageAsset {
  readonly contentType: string;
  readonly body: Buffer;
}

const FILES = {
  "/": { file: "index.html", contentType: "text/html; charset=utf-8" },
  "/ui/app.js": { file: "app.js", contentType: "text/javascript; charset=utf-8" },
  "/ui/app.css": { file: "app.css", contentType: "text/css; charset=utf-8" },
} as const;

/** Same-origin only; the script builds its SVG through the DOM, so no inline script or style is needed. */
export const PAGE_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "referrer-policy": "no-referrer",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
};

let cache: Map<string, Buffer> | undefined;

function load(): Map<string, Buffer> {
  cache ??= new Map(Object.values(FILES).map(({ file }) => [file, readPageFile(file)]));
  return cache;
}

/** The asset at `path`, or undefined when the path is not one of the page's. */
export function pageAsset(path: string, authRequired: boolean): PageAsset | undefined {
  const spec = (FILES as Record<string, { file: string; contentType: string }>)[path];
  if (!spec) return undefined;
  const body = load().get(spec.file);
  if (!body) return undefined;
  if (spec.file !== "index.html") return { contentType: spec.contentType, body };
  return {
    contentType: spec.contentType,
    body: Buffer.from(body.toString("utf8").replace("{{AUTH}}", authRequired ? "token" : "none")),
  };
}
