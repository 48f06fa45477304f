/**
 * Reads one of the status page's files from `src/status/page/` (copied beside the compiled code by `npm run build`).
 * Its own module so the release bundle can replace it with the files embedded as code: a single executable has no
 * files beside it (scripts/release/bundle.ts).
 */
import { readFileSync } from "node:fs";

export const PAGE_FILES = ["index.html", "app.js", "app.css"] as const;
export type PageFile = (typeof PAGE_FILES)[number];

export function readPageFile(file: PageFile): Buffer {
  return readFileSync(new URL(`./page/${file}`, import.meta.url));
}
