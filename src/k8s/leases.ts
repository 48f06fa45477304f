/**
 * coordination.k8s.io/v1 Leases for leader election: read, create, and replace conditional on the resourceVersion
 * that was read, so two candidates can never both believe they won. Times travel as MicroTime
 * (`2006-01-02T15:04:05.000000Z`), the only form the API server accepts for Lease times. Every call takes an
 * `AbortSignal` besides the client's request timeout: leader election bounds each attempt by its renew deadline,
 * which is shorter than any sensible request timeout (client-go does the same with its context).
 */
import { V1MicroTime, type V1Lease } from "@kubernetes/client-node";
import { abortedBy, isNotFound, type KubeClient } from "./kube-client.js";

/** A Lease as leader election sees it. */
export interface LeaseRecord {
  readonly holderIdentity: string | undefined;
  readonly leaseDurationSeconds: number | undefined;
  readonly acquireTime: Date | undefined;
  readonly renewTime: Date | undefined;
  readonly leaseTransitions: number;
  readonly resourceVersion: string | undefined;
}

export type LeaseSpecUpdate = Omit<LeaseRecord, "resourceVersion">;

export class Leases {
  constructor(private readonly client: KubeClient) {}

  /** The Lease, or undefined when there is none. */
  async get(namespace: string, name: string, signal?: AbortSignal): Promise<LeaseRecord | undefined> {
    try {
      const lease = await this.client.call(`read Lease ${namespace}/${name}`, () =>
        this.client.coordination.readNamespacedLease({ namespace, name }, abortedBy(signal)),
      );
      return record(lease);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /** Creates the Lease; a 409 (someone else created it first) is a `KubeApiError` with reason AlreadyExists. */
  async create(
    namespace: string,
    name: string,
    spec: LeaseSpecUpdate,
    signal?: AbortSignal,
  ): Promise<LeaseRecord> {
    const lease = await this.client.call(`create Lease ${namespace}/${name}`, () =>
      this.client.coordination.createNamespacedLease(
        { namespace, body: body(namespace, name, spec) },
        abortedBy(signal),
      ),
    );
    return record(lease);
  }

  /** Replaces the Lease if it is still at `resourceVersion`; otherwise a 409 Conflict. */
  async replace(
    namespace: string,
    name: string,
    spec: LeaseSpecUpdate,
    resourceVersion: string | undefined,
    signal?: AbortSignal,
  ): Promise<LeaseRecord> {
    const lease = await this.client.call(`replace Lease ${namespace}/${name}`, () =>
      this.client.coordination.replaceNamespacedLease(
        { namespace, name, body: body(namespace, name, spec, resourceVersion) },
        abortedBy(signal),
      ),
    );
    return record(lease);
  }
}

function body(namespace: string, name: string, spec: LeaseSpecUpdate, resourceVersion?: string): V1Lease {
  const micro = (date: Date | undefined) => (date ? new V1MicroTime(date.getTime()) : undefined);
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: {
      name,
      namespace,
      labels: { "app.kubernetes.io/name": "capsule" },
      ...(resourceVersion !== undefined && { resourceVersion }),
    },
    spec: {
      ...(spec.holderIdentity !== undefined && { holderIdentity: spec.holderIdentity }),
      ...(spec.leaseDurationSeconds !== undefined && { leaseDurationSeconds: spec.leaseDurationSeconds }),
      ...(spec.acquireTime && { acquireTime: micro(spec.acquireTime) }),
      ...(spec.renewTime && { renewTime: micro(spec.renewTime) }),
      leaseTransitions: spec.leaseTransitions,
    },
  };
}

function record(lease: V1Lease): LeaseRecord {
  // MicroTime fields come back as strings: client-node has no deserializer for them.
  const time = (value: unknown) => {
    if (value instanceof Date) return value;
    if (typeof value !== "string") return undefined;
    const ms = Date.parse(value);
    return Number.isNaN(ms) ? undefined : new Date(ms);
  };
  const spec = lease.spec ?? {};
  return {
    holderIdentity: spec.holderIdentity || undefined,
    leaseDurationSeconds: spec.leaseDurationSeconds,
    acquireTime: time(spec.acquireTime),
    renewTime: time(spec.renewTime),
    leaseTransitions: spec.leaseTransitions ?? 0,
    resourceVersion: lease.metadata?.resourceVersion,
  };
}
