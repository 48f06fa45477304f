import { createHash } from "node:crypto";

/**
 * JSON with object keys sorted at every level and `undefined` dropped: the same value always gives the same
 * bytes, whatever order its keys were built in. Arrays keep their order (it is meaningful in Kubernetes).
 */
export function canonicalJson(value: unknown): string {
  // Written directly rather than JSON.stringify of a key-sorted copy: no intermediate objects (it runs per CronJob).
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value))
    return `[${value.map((v) => (v === undefined ? "null" : canonicalJson(v))).join(",")}]`;
  const parts: string[] = [];
  for (const key of Object.keys(value).sort()) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) parts.push(`${JSON.stringify(key)}:${canonicalJson(v)}`);
  }
  return `{${parts.join(",")}}`;
}

export function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
