/**
 * `fields` without those that are undefined: an options object whose optional fields must be absent rather than
 * undefined (exactOptionalPropertyTypes), built from values that may be unset.
 */
export function defined<T extends object>(fields: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>;
  };
}
