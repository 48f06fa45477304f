/**
 * Drift: where a live CronJob no longer holds what capsule compiled, although its spec-hash annotation still says
 * it does (someone edited it by hand: `kubectl edit`, a patch, another controller). Pure.
 *
 * Capsule owns every field its compiler sets, and only those: the compiled manifest must be contained in the live
 * object. Objects are compared key by key over the keys capsule sets, so fields the API server adds (defaults such
 * as `terminationMessagePath`, `creationTimestamp`) or other tools add (labels, annotations) are not drift. Lists
 * are owned whole: a container, env variable or volume added, removed or reordered by hand is drift. Two
 * normalisations keep an untouched CronJob from looking changed: the API server drops empty strings, lists and
 * objects, so those equal absence; and it canonicalises quantities (`1024Mi` comes back as `1Gi`), so resource
 * amounts compare by value.
 */

/** The path of the first field capsule owns that differs, e.g. `spec.schedule`, or undefined when none does. */
export function ownedFieldDrift(desired: unknown, live: unknown, path = ""): string | undefined {
  if (desired === undefined) return undefined; // capsule does not set it
  // An empty object sets no field; an empty string or list does (the live one must be empty or dropped too).
  if (isEmpty(desired)) return isObject(desired) || isEmpty(live) ? undefined : path;
  if (Array.isArray(desired)) {
    if (!Array.isArray(live) || live.length !== desired.length) return path;
    for (const [i, item] of desired.entries()) {
      const at = ownedFieldDrift(item, live[i], `${path}[${i}]`);
      if (at !== undefined) return at;
    }
    return undefined;
  }
  if (isObject(desired)) {
    if (!isObject(live)) return path;
    for (const [key, value] of Object.entries(desired)) {
      const at = ownedFieldDrift(value, live[key], path ? `${path}.${key}` : key);
      if (at !== undefined) return at;
    }
    return undefined;
  }
  if (desired === live) return undefined;
  if (typeof desired === "string" && typeof live === "string" && QUANTITY_PATH.test(path)) {
    const a = quantity(desired);
    if (a !== undefined && a === quantity(live)) return undefined;
  }
  return path;
}

/** Where capsule writes quantities: container resources and the emptyDir size limit. */
const QUANTITY_PATH = /\.resources\.(requests|limits)\.[^.]+$|\.emptyDir\.sizeLimit$/;

/** The suffixes the plan schema allows (plan/schema.ts) and the API server may answer with; milli divides. */
const SUFFIX: Record<string, number> = {
  "": 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};

function quantity(text: string): number | undefined {
  const match = /^([0-9]+(?:\.[0-9]+)?)(m|k|Ki|Mi|Gi|Ti|M|G|T)?$/.exec(text);
  if (!match) return undefined;
  const [, amount, suffix = ""] = match;
  // 100 / 1000 rounds to the same double as 0.1; 100 * 0.001 does not.
  return suffix === "m" ? Number(amount) / 1000 : Number(amount) * SUFFIX[suffix]!;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function isEmpty(value: unknown): boolean {
  return (
    value === undefined ||
    value === null ||
    value === "" ||
    (Array.isArray(value) && value.length === 0) ||
    (isObject(value) && Object.keys(value).length === 0)
  );
}
