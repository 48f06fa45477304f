/**
 * The one place ajv is constructed. Under NodeNext, `import Ajv from "ajv"` yields the module namespace rather than
 * the class (ajv issue 2132); the workaround lives here and nowhere else. ajv is loaded on first use: a command that
 * validates nothing (`capsule pg --create` writes statefiles, it does not read them) skips its 30 ms of loading.
 */
import type AjvModule from "ajv";
import type { ErrorObject, ValidateFunction } from "ajv";
import type addFormatsModule from "ajv-formats";
import { loadOnUse } from "./load-on-use.js";

type AjvClass = typeof AjvModule.default;
type AddFormats = typeof addFormatsModule.default;
const ajvModule = loadOnUse<typeof AjvModule>("ajv");
const addFormatsOf = loadOnUse<typeof addFormatsModule>("ajv-formats");

export type { ErrorObject, ValidateFunction };

export function createAjv(): InstanceType<AjvClass> {
  const loaded = ajvModule();
  const Ajv = ((loaded as unknown as { default?: AjvClass }).default ?? loaded) as AjvClass;
  const formats = addFormatsOf();
  const addFormats = ((formats as unknown as { default?: AddFormats }).default ?? formats) as AddFormats;
  const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, useDefaults: false });
  addFormats(ajv);
  return ajv;
}

/** `source: /json/pointer message (got value)` — one line per error, naming where and what. */
export function formatAjvErrors(
  source: string,
  errors: ErrorObject[] | null | undefined,
  data: unknown,
): string[] {
  return (errors ?? []).map((error) => {
    let pointer = error.instancePath || "/";
    let message = error.message ?? "is invalid";
    if (error.keyword === "additionalProperties") {
      const extra = (error.params as { additionalProperty: string }).additionalProperty;
      pointer = `${error.instancePath}/${extra}`;
      message = "is not a known field";
      return `${source}: ${pointer} ${message}`;
    }
    if (error.keyword === "required") {
      const missing = (error.params as { missingProperty: string }).missingProperty;
      return `${source}: ${error.instancePath}/${missing} is required`;
    }
    const got = valueAt(data, error.instancePath);
    return `${source}: ${pointer} ${message} (got ${JSON.stringify(got)})`;
  });
}

function valueAt(data: unknown, pointer: string): unknown {
  let current: unknown = data;
  for (const raw of pointer.split("/").slice(1)) {
    const part = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}
