/**
 * PersistentVolumeClaims (core/v1) as a physical restore in the cluster needs them: create a new one, never touch an
 * existing one. Plain data in and out; errors are `KubeApiError`s.
 */
import type { V1PersistentVolumeClaim } from "@kubernetes/client-node";
import { isNotFound, type KubeClient } from "./kube-client.js";
import type { Named } from "./workloads.js";

export class VolumeClaims {
  constructor(private readonly client: KubeClient) {}

  /** Creates the claim; an existing claim of that name is a 409 AlreadyExists, never overwritten. */
  async create(manifest: Named<V1PersistentVolumeClaim>): Promise<void> {
    const { namespace, name } = manifest.metadata;
    await this.client.call(`create PersistentVolumeClaim ${namespace}/${name}`, () =>
      this.client.core.createNamespacedPersistentVolumeClaim({ namespace, body: manifest }),
    );
  }

  async exists(namespace: string, name: string): Promise<boolean> {
    try {
      await this.client.call(`read PersistentVolumeClaim ${namespace}/${name}`, () =>
        this.client.core.readNamespacedPersistentVolumeClaim({ namespace, name }),
      );
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }
}
