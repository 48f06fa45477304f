/** Labels of the daemon's objects; the selector labels pick the daemon's pods. */
import { NAME } from "./options.js";

export function labels(): Record<string, string> {
  return { "app.kubernetes.io/name": NAME };
}

export function selectorLabels(): Record<string, string> {
  return { "app.kubernetes.io/component": "daemon", "app.kubernetes.io/name": NAME };
}
