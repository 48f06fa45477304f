/**
 * What `capsule install --dry-run` renders, and its defaults (in one place, docs/style.md §7). The defaults are the ones
 * `deploy/capsule.yaml` is rendered with, so the committed file and `capsule install --dry-run` never drift.
 */
import { DEFAULT_BUCKET_SECRET } from "../plan/defaults.js";

export interface InstallOptions {
  /** Namespace the daemon runs in (its Deployment, Service, ServiceAccount and Lease). @default "capsule-system" */
  readonly namespace: string;
  /** The daemon's image. @default "ghcr.io/cnvrg/capsule:latest" */
  readonly image: string;
  /** Deployment replicas; one leads through the Lease, all serve the status API. @default 2 */
  readonly replicas: number;
  /** `CAPSULE_BUCKET` of the daemon. @default "s3://change-me/capsule" (a placeholder to edit) */
  readonly bucket: string;
  /**
   * Manage this namespace only: the daemon runs with `--namespace` and its RBAC becomes a Role/RoleBinding there.
   * @default undefined (all namespaces, ClusterRole/ClusterRoleBinding)
   */
  readonly watchNamespace?: string | undefined;
  /**
   * Secrets the daemon may `get` (by name only: `resourceNames`): the bucket Secrets its targets' CronJobs name, so
   * it can read each installation's own bucket (ADR 0012). cnvrg's is `cp-object-storage`; `--secret` adds the
   * names hand-written plans use. Never `list`: that would read every Secret.
   * @default ["cp-object-storage"]
   */
  readonly secretNames: readonly string[];
  /**
   * Add a ServiceMonitor, a PrometheusRule with capsule's alerts and the Grafana dashboard ConfigMap (needs the
   * Prometheus Operator's CRDs). @default false
   */
  readonly withMonitoring?: boolean;
}

export const INSTALL_DEFAULTS: InstallOptions = {
  namespace: "capsule-system",
  image: "ghcr.io/cnvrg/capsule:latest",
  replicas: 2,
  bucket: "s3://change-me/capsule",
  secretNames: [DEFAULT_BUCKET_SECRET],
};

/** Fixed by the daemon's flags in the Deployment. */
export const NAME = "capsule";
export const LEADER_LEASE = "capsule-leader";
export const HTTP_PORT = 8080;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** registry/path[:tag][@digest], no whitespace or quotes. */
const IMAGE = /^[A-Za-z0-9][A-Za-z0-9._\-/:@]*$/;
const BUCKET = /^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/[^\s]*)?$/;
const MAX_REPLICAS = 10;

/** Why the options cannot be rendered, naming the flag and the value; undefined when they can. */
export function invalidInstallOption(options: InstallOptions): string | undefined {
  const got = (value: unknown) => `(got ${JSON.stringify(value)})`;
  if (!DNS_LABEL.test(options.namespace) || options.namespace.length > 63)
    return `--namespace must be a DNS label (lowercase letters, digits, "-"; at most 63) ${got(options.namespace)}`;
  if (!IMAGE.test(options.image)) return `--image must be an image reference ${got(options.image)}`;
  if (!Number.isInteger(options.replicas) || options.replicas < 1 || options.replicas > MAX_REPLICAS)
    return `--replicas must be an integer from 1 to ${MAX_REPLICAS} ${got(options.replicas)}`;
  if (!BUCKET.test(options.bucket)) return `--bucket must be s3://bucket[/prefix] ${got(options.bucket)}`;
  const watch = options.watchNamespace;
  if (watch !== undefined && (!DNS_LABEL.test(watch) || watch.length > 63))
    return `--watch-namespace must be a DNS label (lowercase letters, digits, "-"; at most 63) ${got(watch)}`;
  for (const name of options.secretNames) {
    if (!DNS_SUBDOMAIN.test(name) || name.length > 253) return `--secret must be a Secret name ${got(name)}`;
  }
  return undefined;
}
