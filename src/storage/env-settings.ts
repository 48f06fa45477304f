/** A store's time settings from its `CAPSULE_<STORE>_…_MS` variables, each refused in one line naming it when bad. */
import { CapsuleError, ErrorCode } from "../domain/errors.js";

export function milliseconds<K extends "retryWindowMs" | "idleTimeoutMs" | "requestTimeoutMs">(
  env: NodeJS.ProcessEnv,
  name: string,
  field: K,
): Partial<Record<K, number>> {
  const value = env[name];
  if (value === undefined || value === "") return {};
  const ms = Number(value);
  if (!Number.isInteger(ms) || ms < 1) {
    throw new CapsuleError(
      ErrorCode.Config,
      `${name} must be a whole number of milliseconds >= 1 (got ${JSON.stringify(value)})`,
    );
  }
  return { [field]: ms } as Partial<Record<K, number>>;
}
