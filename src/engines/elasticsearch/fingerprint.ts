/**
 * What an Elasticsearch backup promises about its data: the exact number of documents of every exported index,
 * counted in the very snapshot the export read (a size-0 search with `track_total_hits: true` on the point in
 * time, or the scroll's own total — docs/adr/0006), and the server it came from. The export fails when the
 * documents it wrote differ from that count; a restore compares `_count` on the target with it.
 */
import type { Distribution, ExportMethod } from "./format.js";

export interface EsFingerprint {
  distribution: Distribution;
  serverVersion: string;
  clusterName: string;
  clusterUuid: string;
  method: ExportMethod;
  /** index → its documents (top-level documents, as `_count` reports them; nested objects are not counted). */
  indices: Record<string, { docs: number }>;
  /** Total documents over all exported indices. */
  docs: number;
  /** Indices left out and why (closed indices cannot be read). */
  skipped?: Record<string, string>;
}
