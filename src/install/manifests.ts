/**
 * `capsule install --dry-run`: the daemon's own manifests as plain, typed objects, written with the compiler's YAML
 * writer (sorted keys, explicit names), so the output is byte-stable. `deploy/capsule.yaml` is the default rendering.
 */
import type {
  V1Namespace,
  V1PodDisruptionBudget,
  V1Service,
  V1ServiceAccount,
} from "@kubernetes/client-node";
import { dumpYaml } from "../compiler/yaml.js";
import { API_SECRET, BUCKET_SECRET, deployment } from "./deployment.js";
import { labels, selectorLabels } from "./labels.js";
import { dumpMonitoringYaml, monitoringManifests } from "./monitoring.js";
import { HTTP_PORT, INSTALL_DEFAULTS, invalidInstallOption, NAME, type InstallOptions } from "./options.js";
import { rbacObjects } from "./rbac.js";
import { DOCUMENT_SEPARATOR, type Manifest } from "../domain/manifest.js";

/**
 * The objects in apply order: Namespace, ServiceAccount, RBAC, Deployment, Service, PodDisruptionBudget, then with
 * `withMonitoring` the ServiceMonitor, PrometheusRule and dashboard ConfigMap.
 */
export function installManifests(options: InstallOptions = INSTALL_DEFAULTS): Manifest[] {
  return [...daemonManifests(options), ...(options.withMonitoring ? monitoringManifests(options) : [])];
}

function daemonManifests(options: InstallOptions): Manifest[] {
  const invalid = invalidInstallOption(options);
  // The command validates its flags first: reaching this is a bug.
  if (invalid !== undefined) throw new Error(`install options: ${invalid}`);
  const namespace: V1Namespace = {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: {
      name: options.namespace,
      labels: { ...labels(), "pod-security.kubernetes.io/enforce": "restricted" },
    },
  };
  const serviceAccount: V1ServiceAccount = {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: { name: NAME, namespace: options.namespace, labels: labels() },
  };
  const service: V1Service = {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: NAME, namespace: options.namespace, labels: labels() },
    spec: {
      selector: selectorLabels(),
      ports: [{ name: "http", port: HTTP_PORT, targetPort: "http", protocol: "TCP" }],
    },
  };
  const disruptionBudget: V1PodDisruptionBudget = {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: { name: NAME, namespace: options.namespace, labels: labels() },
    // One replica alone cannot keep one available through a drain: then allow the eviction.
    spec: {
      ...(options.replicas > 1 ? { minAvailable: 1 } : { maxUnavailable: 1 }),
      selector: { matchLabels: selectorLabels() },
    },
  };
  return [
    namespace,
    serviceAccount,
    ...rbacObjects(options),
    deployment(options),
    service,
    disruptionBudget,
  ] as Manifest[];
}

function header(options: InstallOptions): string {
  const scope =
    options.watchNamespace === undefined
      ? "all namespaces (ClusterRole/ClusterRoleBinding)"
      : `namespace ${options.watchNamespace} only (Role/RoleBinding)`;
  return [
    "# capsule daemon (`capsule start`), rendered by `capsule install --dry-run`: do not edit, re-render.",
    `# Namespace ${options.namespace}; manages ${scope}.`,
    "#",
    `# Before applying, create two Secrets in ${options.namespace}:`,
    `#   ${BUCKET_SECRET}  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (both optional with IRSA / an instance role)`,
    `#   ${API_SECRET}     token (bearer token for /metrics and /api/, at least 16 characters)`,
    "# For S3-compatible stores add AWS_ENDPOINT_URL_S3 / AWS_REGION to the Deployment's env.",
    "#",
    "# Apply with: capsule install --dry-run [flags] | kubectl apply -f -",
    ...(options.withMonitoring
      ? [
          "# The monitoring objects at the end need the Prometheus Operator's CRDs (ServiceMonitor, PrometheusRule).",
        ]
      : []),
    "",
  ].join("\n");
}

/** The multi-document YAML, header comment first; the same bytes for the same options. */
export function renderInstall(options: InstallOptions = INSTALL_DEFAULTS): string {
  const documents = [
    ...daemonManifests(options).map(dumpYaml),
    ...(options.withMonitoring ? monitoringManifests(options).map(dumpMonitoringYaml) : []),
  ];
  return header(options) + documents.join(DOCUMENT_SEPARATOR);
}
