/**
 * Kubernetes names and label values for compiled objects. A CronJob's name must leave room for the 11 characters
 * its Jobs append, so it is at most 52; a label value at most 63. Both are readable when they fit and otherwise cut
 * and suffixed with a hash of the full value, so distinct inputs stay distinct and the same input always gives the
 * same name.
 */
import { sha256Hex } from "./canonical-json.js";

export const MAX_CRONJOB_NAME = 52;
export const MAX_LABEL_VALUE = 63;
/** 40 bits: among 10,000 long names the chance of any two sharing a suffix is about 1 in 20,000. */
const HASH_LENGTH = 10;

/** `capsule-<cluster>-<target>`, dots → dashes (cluster ids are `<namespace>.<name>`), at most 52 characters. */
export function cronJobName(cluster: string, target: string): string {
  const readable = `capsule-${cluster.replace(/\./g, "-")}-${target}`;
  return shorten(readable, `${cluster}/${target}`, MAX_CRONJOB_NAME);
}

/** A valid label value for any cluster id or target name (both already use label-safe characters). */
export function labelValue(value: string): string {
  return shorten(value, value, MAX_LABEL_VALUE);
}

function shorten(readable: string, identity: string, max: number): string {
  if (readable.length <= max) return readable;
  const hash = sha256Hex(identity).slice(0, HASH_LENGTH);
  const head = readable.slice(0, max - HASH_LENGTH - 1).replace(/[^a-z0-9]+$/, "");
  return `${head}-${hash}`;
}
