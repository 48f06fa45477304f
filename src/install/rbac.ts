/**
 * The daemon's RBAC, least privilege (docs/design.md §11): exactly the verbs its API calls use (`src/k8s/`), never a
 * wildcard, never `list`/`watch` on Secrets (that would read every Secret's data), Secrets by name only.
 * All namespaces: a ClusterRole/ClusterRoleBinding; with `watchNamespace`: a Role/RoleBinding there. The Lease rules
 * are always a Role in the daemon's own namespace.
 */
import type {
  V1ClusterRole,
  V1ClusterRoleBinding,
  V1PolicyRule,
  V1Role,
  V1RoleBinding,
} from "@kubernetes/client-node";
import { LEADER_LEASE, NAME, type InstallOptions } from "./options.js";
import { labels } from "./labels.js";

const RBAC_API = "rbac.authorization.k8s.io";
export const LEADER_ELECTION = `${NAME}-leader-election`;

/** The rules of the daemon's main (Cluster)Role. */
export function daemonRules(options: InstallOptions): V1PolicyRule[] {
  const secretNames = [...new Set(options.secretNames)].sort();
  return [
    // Scan the CnvrgApps the plans come from; the watch only triggers a relist (src/k8s/cnvrgapps.ts).
    { apiGroups: ["mlops.cnvrg.io"], resources: ["cnvrgapps"], verbs: ["list", "watch"] },
    // Keep the backup CronJobs equal to the plan (src/k8s/workloads.ts). Deletes use propagationPolicy=Background:
    // the garbage collector, not capsule, removes a deleted CronJob's Jobs.
    { apiGroups: ["batch"], resources: ["cronjobs"], verbs: ["create", "delete", "list", "update"] },
    // The WAL streamers of pitr targets, reconciled like the CronJobs (the same verbs, the same propagation).
    { apiGroups: ["apps"], resources: ["deployments"], verbs: ["create", "delete", "list", "update"] },
    // Run bucket requests as Jobs and follow them.
    { apiGroups: ["batch"], resources: ["jobs"], verbs: ["create", "get"] },
    // The referenced Secrets, by name only. An empty resourceNames would mean every Secret: no rule then.
    ...(secretNames.length > 0
      ? [{ apiGroups: [""], resources: ["secrets"], resourceNames: secretNames, verbs: ["get"] }]
      : []),
    // Tell users why a CnvrgApp is skipped (kubectl describe cnvrgapp).
    { apiGroups: [""], resources: ["events"], verbs: ["create"] },
  ];
}

/** Leader election: create the Lease (create cannot be limited by name), then only that Lease. */
export function leaseRules(): V1PolicyRule[] {
  return [
    { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["create"] },
    {
      apiGroups: ["coordination.k8s.io"],
      resources: ["leases"],
      resourceNames: [LEADER_LEASE],
      verbs: ["get", "update"],
    },
  ];
}

type Rbac = V1ClusterRole | V1ClusterRoleBinding | V1Role | V1RoleBinding;

export function rbacObjects(options: InstallOptions): Rbac[] {
  const subjects = [{ kind: "ServiceAccount", name: NAME, namespace: options.namespace }];
  const watch = options.watchNamespace;
  const main: Rbac[] =
    watch === undefined
      ? [
          {
            apiVersion: `${RBAC_API}/v1`,
            kind: "ClusterRole",
            metadata: { name: NAME, labels: labels() },
            rules: daemonRules(options),
          },
          {
            apiVersion: `${RBAC_API}/v1`,
            kind: "ClusterRoleBinding",
            metadata: { name: NAME, labels: labels() },
            roleRef: { apiGroup: RBAC_API, kind: "ClusterRole", name: NAME },
            subjects,
          },
        ]
      : [
          {
            apiVersion: `${RBAC_API}/v1`,
            kind: "Role",
            metadata: { name: NAME, namespace: watch, labels: labels() },
            rules: daemonRules(options),
          },
          {
            apiVersion: `${RBAC_API}/v1`,
            kind: "RoleBinding",
            metadata: { name: NAME, namespace: watch, labels: labels() },
            roleRef: { apiGroup: RBAC_API, kind: "Role", name: NAME },
            subjects,
          },
        ];
  return [
    ...main,
    {
      apiVersion: `${RBAC_API}/v1`,
      kind: "Role",
      metadata: { name: LEADER_ELECTION, namespace: options.namespace, labels: labels() },
      rules: leaseRules(),
    },
    {
      apiVersion: `${RBAC_API}/v1`,
      kind: "RoleBinding",
      metadata: { name: LEADER_ELECTION, namespace: options.namespace, labels: labels() },
      roleRef: { apiGroup: RBAC_API, kind: "Role", name: LEADER_ELECTION },
      subjects,
    },
  ];
}
