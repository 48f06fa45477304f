/**
 * The daemon's Deployment: `replicas` pods (one leads through the Lease, all serve the status API), probes on
 * /healthz (liveness, startup) and /readyz (readiness), a pod locked down like capsule's CronJobs: non-root,
 * read-only root with an emptyDir at /tmp, no capabilities, no privilege escalation, RuntimeDefault seccomp.
 * Credentials arrive as env from Secrets (`capsule-bucket`, `capsule-api`), never through the API.
 */
import type { V1Deployment, V1EnvVar, V1Probe } from "@kubernetes/client-node";
import { selectorLabels } from "./labels.js";
import { HTTP_PORT, LEADER_LEASE, NAME, type InstallOptions } from "./options.js";

/** Secrets the operator creates before applying (see the header of the rendered YAML). */
export const BUCKET_SECRET = "capsule-bucket";
export const API_SECRET = "capsule-api";
const TOKEN_ENV = "CAPSULE_API_TOKEN";
const NONROOT_UID = 65532;
/** The daemon writes little to /tmp (no dumps: those run in the CronJobs' pods). */
const TMP_SIZE_LIMIT = "64Mi";

export function daemonArgs(options: InstallOptions): string[] {
  return [
    "start",
    `--listen=:${HTTP_PORT}`,
    `--token-env=${TOKEN_ENV}`,
    `--lease-name=${LEADER_LEASE}`,
    "--resync=5m",
    ...(options.watchNamespace === undefined ? [] : [`--namespace=${options.watchNamespace}`]),
  ];
}

function env(options: InstallOptions): V1EnvVar[] {
  const fromSecret = (name: string, secret: string, key: string, optional: boolean): V1EnvVar => ({
    name,
    valueFrom: { secretKeyRef: { name: secret, key, ...(optional && { optional }) } },
  });
  return [
    { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
    { name: "HOSTNAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
    { name: "CAPSULE_BUCKET", value: options.bucket },
    // Optional: with IRSA or an instance role there are no keys.
    fromSecret("AWS_ACCESS_KEY_ID", BUCKET_SECRET, "AWS_ACCESS_KEY_ID", true),
    fromSecret("AWS_SECRET_ACCESS_KEY", BUCKET_SECRET, "AWS_SECRET_ACCESS_KEY", true),
    fromSecret(TOKEN_ENV, API_SECRET, "token", false),
  ];
}

const probe = (path: string, extra: Omit<V1Probe, "httpGet">): V1Probe => ({
  httpGet: { path, port: "http" },
  ...extra,
});

export function deployment(options: InstallOptions): V1Deployment {
  const selector = selectorLabels();
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: NAME, namespace: options.namespace, labels: selector },
    spec: {
      replicas: options.replicas,
      selector: { matchLabels: selector },
      // Never below `replicas` during a rollout: the standby keeps the status API and takes the Lease over.
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: {
          labels: selector,
          annotations: {
            "prometheus.io/path": "/metrics",
            "prometheus.io/port": String(HTTP_PORT),
            "prometheus.io/scrape": "true",
          },
        },
        spec: {
          serviceAccountName: NAME,
          // The status API must answer while a SIGTERM'd leader releases its Lease; 30 s is plenty.
          terminationGracePeriodSeconds: 30,
          enableServiceLinks: false,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: NONROOT_UID,
            runAsGroup: NONROOT_UID,
            fsGroup: NONROOT_UID,
            seccompProfile: { type: "RuntimeDefault" },
          },
          affinity: {
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [
                {
                  weight: 100,
                  podAffinityTerm: {
                    topologyKey: "kubernetes.io/hostname",
                    labelSelector: { matchLabels: selector },
                  },
                },
              ],
            },
          },
          containers: [
            {
              name: NAME,
              image: options.image,
              imagePullPolicy: "IfNotPresent",
              args: daemonArgs(options),
              env: env(options),
              ports: [{ name: "http", containerPort: HTTP_PORT, protocol: "TCP" }],
              livenessProbe: probe("/healthz", { periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 3 }),
              readinessProbe: probe("/readyz", { periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 3 }),
              startupProbe: probe("/healthz", { periodSeconds: 2, failureThreshold: 30 }),
              resources: { requests: { cpu: "50m", memory: "128Mi" }, limits: { memory: "512Mi" } },
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                runAsNonRoot: true,
                capabilities: { drop: ["ALL"] },
              },
              volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
            },
          ],
          volumes: [{ name: "tmp", emptyDir: { sizeLimit: TMP_SIZE_LIMIT } }],
        },
      },
    },
  };
}
