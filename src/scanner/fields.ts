/**
 * Reading untyped CnvrgApp fields into typed values, recording a reason per bad field instead of throwing, so one
 * app can report all of its problems and the scan can go on. `field` is the dotted field path users see in
 * `kubectl explain`, e.g. `spec.dbs.pg.backup.period`; its last segment is the key read from `parent`.
 */
import { parsePeriod } from "../plan/schedule.js";

export interface SkippedField {
  /** `<namespace>/<name>` of the CnvrgApp. */
  readonly app: string;
  /** The target that was skipped; absent when the whole app was. */
  readonly target?: string;
  readonly field: string;
  readonly value: unknown;
  readonly reason: string;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export class FieldReader {
  readonly problems: SkippedField[] = [];

  constructor(
    readonly app: string,
    readonly target?: string,
  ) {}

  private bad(field: string, value: unknown, reason: string): undefined {
    this.problems.push({ app: this.app, ...(this.target && { target: this.target }), field, value, reason });
    return undefined;
  }

  /** A field whose value is readable but not allowed here (a rule spanning fields). */
  reject(field: string, value: unknown, reason: string): undefined {
    return this.bad(field, value, reason);
  }

  /** An object at `field`, `{}` when absent, undefined (and a problem) when something else. */
  object(parent: Record<string, unknown>, field: string): Record<string, unknown> | undefined {
    const value = valueAt(parent, field);
    if (value === undefined || value === null) return {};
    if (typeof value === "object" && !Array.isArray(value)) return value as Record<string, unknown>;
    return this.bad(field, value, "must be an object");
  }

  boolean(parent: Record<string, unknown>, field: string, fallback: boolean): boolean | undefined {
    const value = valueAt(parent, field);
    if (value === undefined || value === null) return fallback;
    if (typeof value === "boolean") return value;
    return this.bad(field, value, "must be true or false");
  }

  /** A Kubernetes object name: a DNS label (services) or subdomain (Secrets); required without a fallback. */
  name(
    parent: Record<string, unknown>,
    field: string,
    fallback: string | undefined,
    label = false,
  ): string | undefined {
    const value = valueAt(parent, field);
    if (value === undefined || value === null || value === "") {
      return fallback ?? this.bad(field, value, "is required");
    }
    const pattern = label ? DNS_LABEL : DNS_SUBDOMAIN;
    if (typeof value === "string" && pattern.test(value) && value.length <= (label ? 63 : 253)) return value;
    return this.bad(field, value, `must be a Kubernetes ${label ? "DNS label" : "object name"}`);
  }

  integer(
    parent: Record<string, unknown>,
    field: string,
    fallback: number,
    range: [number, number],
  ): number | undefined {
    const value = valueAt(parent, field);
    if (value === undefined || value === null) return fallback;
    if (typeof value === "number" && Number.isInteger(value) && value >= range[0] && value <= range[1])
      return value;
    return this.bad(field, value, `must be an integer from ${range[0]} to ${range[1]}`);
  }

  /** One of `choices`, spelled exactly; `fallback` when absent or empty. */
  choice(
    parent: Record<string, unknown>,
    field: string,
    choices: readonly string[],
    fallback: string,
  ): string | undefined {
    const value = valueAt(parent, field);
    if (value === undefined || value === null || value === "") return fallback;
    if (typeof value === "string" && choices.includes(value)) return value;
    return this.bad(field, value, `must be one of ${choices.join(", ")}`);
  }

  period(parent: Record<string, unknown>, field: string, fallback: string): string | undefined {
    const value = valueAt(parent, field);
    if (value === undefined || value === null) return fallback;
    if (typeof value === "string") {
      const seconds = parsePeriod(value);
      if (typeof seconds === "number") return value;
      return this.bad(field, value, seconds.reason);
    }
    return this.bad(field, value, "must be a string <number><s|m|h|d>, e.g. 24h");
  }
}

/** The value under the last segment of `field` in `parent`. */
function valueAt(parent: Record<string, unknown>, field: string): unknown {
  return parent[field.slice(field.lastIndexOf(".") + 1)];
}

/** One stderr line per skipped field: names the app, the field and the value. */
export function formatSkipped(s: SkippedField): string {
  const what = s.target ? `target ${s.target} of CnvrgApp ${s.app}` : `CnvrgApp ${s.app}`;
  return `skipped ${what}: ${s.field} ${s.reason} (got ${JSON.stringify(s.value) ?? "undefined"})`;
}
