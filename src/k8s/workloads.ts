/**
 * CronJobs and Jobs (batch/v1) and Deployments (apps/v1) as the reconciler and the request watcher need them: list
 * by label, read, create, replace with the resourceVersion that was read (a concurrent change is a 409, never
 * silently overwritten), delete. Plain data in and out; errors are `KubeApiError`s.
 */
import type { V1CronJob, V1Deployment, V1Job, V1ListMeta, V1ObjectMeta } from "@kubernetes/client-node";
import { abortedBy, type KubeClient } from "./kube-client.js";

const PAGE_SIZE = 500;

interface PageQuery {
  readonly labelSelector: string;
  readonly limit: number;
  readonly _continue?: string;
}

/** What capsule needs to know about a CronJob (or Deployment) that exists. */
export interface LiveCronJob {
  readonly namespace: string;
  readonly name: string;
  readonly resourceVersion: string | undefined;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

/**
 * An object with the name and namespace a write addresses it by. What capsule compiles (compiler/) satisfies it, so
 * this adapter needs none of the compiler's types.
 */
export type Named<T> = T & { metadata: { name: string; namespace: string } };

/** A Job's outcome as far as capsule cares. */
export type JobPhase = "active" | "succeeded" | "failed";

/** A CronJob with its template, as `--in-cluster` copies it into a Job. */
export type CronJobWithTemplate = Named<V1CronJob>;

/** A whole Deployment, as the reconciler reads it to check for drift. */
export type DeploymentWithTemplate = Named<V1Deployment>;

export class Workloads {
  constructor(private readonly client: KubeClient) {}

  /** Whole CronJobs (templates included) matching `labelSelector`, in one namespace or all, paged. */
  cronJobsWithTemplates(labelSelector: string, namespace?: string): Promise<CronJobWithTemplate[]> {
    return this.listNamed("CronJobs", labelSelector, namespace, (page) =>
      namespace
        ? this.client.batch.listNamespacedCronJob({ ...page, namespace })
        : this.client.batch.listCronJobForAllNamespaces(page),
    );
  }

  /** Whole Deployments matching `labelSelector`, in one namespace or all, paged. */
  deploymentsWithTemplates(labelSelector: string, namespace?: string): Promise<DeploymentWithTemplate[]> {
    return this.listNamed("Deployments", labelSelector, namespace, (page) =>
      namespace
        ? this.client.apps.listNamespacedDeployment({ ...page, namespace })
        : this.client.apps.listDeploymentForAllNamespaces(page),
    );
  }

  /** Every page of a listing, keeping the items that have a name and a namespace. */
  private async listNamed<T extends { metadata?: V1ObjectMeta }>(
    kinds: string,
    labelSelector: string,
    namespace: string | undefined,
    listPage: (page: PageQuery) => Promise<{ items: T[]; metadata?: V1ListMeta }>,
  ): Promise<Array<Named<T>>> {
    const out: Array<Named<T>> = [];
    let next: string | undefined;
    const operation = `list ${kinds}${namespace ? ` in ${namespace}` : ""}`;
    do {
      const page = { labelSelector, limit: PAGE_SIZE, ...(next && { _continue: next }) };
      const list = await this.client.call(operation, () => listPage(page));
      for (const item of list.items) {
        const { name, namespace: ns } = item.metadata ?? {};
        if (name && ns) out.push({ ...item, metadata: { ...item.metadata, name, namespace: ns } });
      }
      next = list.metadata?._continue || undefined;
    } while (next);
    return out;
  }

  /** CronJob writes take an optional `signal`: the reconciler's, aborted when its replica stops leading. */
  async createCronJob(manifest: Named<V1CronJob>, signal?: AbortSignal): Promise<void> {
    const { namespace, name } = manifest.metadata;
    await this.client.call(`create CronJob ${namespace}/${name}`, () =>
      this.client.batch.createNamespacedCronJob({ namespace, body: manifest }, abortedBy(signal)),
    );
  }

  /** Replaces the whole object, conditional on `resourceVersion` (what was listed). */
  async replaceCronJob(
    manifest: Named<V1CronJob>,
    resourceVersion: string | undefined,
    signal?: AbortSignal,
  ): Promise<void> {
    const { namespace, name } = manifest.metadata;
    await this.client.call(`replace CronJob ${namespace}/${name}`, () =>
      this.client.batch.replaceNamespacedCronJob(replacing(manifest, resourceVersion), abortedBy(signal)),
    );
  }

  /** Deletes a CronJob and, in the background, the Jobs it owns; conditional on `resourceVersion` when given. */
  async deleteCronJob(
    namespace: string,
    name: string,
    resourceVersion?: string,
    signal?: AbortSignal,
  ): Promise<void> {
    await this.client.call(`delete CronJob ${namespace}/${name}`, () =>
      this.client.batch.deleteNamespacedCronJob(
        deleting(namespace, name, resourceVersion),
        abortedBy(signal),
      ),
    );
  }

  async createDeployment(manifest: Named<V1Deployment>, signal?: AbortSignal): Promise<void> {
    const { namespace, name } = manifest.metadata;
    await this.client.call(`create Deployment ${namespace}/${name}`, () =>
      this.client.apps.createNamespacedDeployment({ namespace, body: manifest }, abortedBy(signal)),
    );
  }

  /** Replaces the whole object, conditional on `resourceVersion` (what was listed). */
  async replaceDeployment(
    manifest: Named<V1Deployment>,
    resourceVersion: string | undefined,
    signal?: AbortSignal,
  ): Promise<void> {
    const { namespace, name } = manifest.metadata;
    await this.client.call(`replace Deployment ${namespace}/${name}`, () =>
      this.client.apps.replaceNamespacedDeployment(replacing(manifest, resourceVersion), abortedBy(signal)),
    );
  }

  /** Deletes a Deployment and, in the background, its ReplicaSets and pods; conditional on `resourceVersion`. */
  async deleteDeployment(
    namespace: string,
    name: string,
    resourceVersion?: string,
    signal?: AbortSignal,
  ): Promise<void> {
    await this.client.call(`delete Deployment ${namespace}/${name}`, () =>
      this.client.apps.deleteNamespacedDeployment(
        deleting(namespace, name, resourceVersion),
        abortedBy(signal),
      ),
    );
  }

  async createJob(manifest: Named<V1Job>): Promise<void> {
    const { namespace, name } = manifest.metadata;
    await this.client.call(`create Job ${namespace}/${name}`, () =>
      this.client.batch.createNamespacedJob({ namespace, body: manifest }),
    );
  }

  /** The Job's phase, or undefined when there is no such Job. */
  async jobPhase(namespace: string, name: string): Promise<JobPhase | undefined> {
    return (await this.jobStatus(namespace, name))?.phase;
  }

  /** The Job's phase and, when it failed, the controller's reason and message; undefined when there is no such Job. */
  async jobStatus(
    namespace: string,
    name: string,
  ): Promise<{ phase: JobPhase; reason?: string; message?: string } | undefined> {
    let job: V1Job;
    try {
      job = await this.client.call(`read Job ${namespace}/${name}`, () =>
        this.client.batch.readNamespacedJob({ namespace, name }),
      );
    } catch (error) {
      if ((error as { status?: number }).status === 404) return undefined;
      throw error;
    }
    const conditions = job.status?.conditions ?? [];
    const holds = (type: string) => conditions.some((c) => c.type === type && c.status === "True");
    if (holds("Complete") || holds("SuccessCriteriaMet")) return { phase: "succeeded" };
    const failed = conditions.find(
      (c) => (c.type === "Failed" || c.type === "FailureTarget") && c.status === "True",
    );
    if (failed)
      return {
        phase: "failed",
        ...(failed.reason && { reason: failed.reason }),
        ...(failed.message && { message: failed.message }),
      };
    return { phase: "active" };
  }
}

/** The parameters of a replace: the whole object, conditional on the `resourceVersion` that was listed. */
function replacing<T extends Named<object>>(manifest: T, resourceVersion: string | undefined) {
  const { namespace, name } = manifest.metadata;
  const body: T = {
    ...manifest,
    metadata: { ...manifest.metadata, ...(resourceVersion !== undefined && { resourceVersion }) },
  };
  return { namespace, name, body };
}

/** The parameters of a delete that takes the dependents in the background, conditional when a version is given. */
function deleting(namespace: string, name: string, resourceVersion: string | undefined) {
  return {
    namespace,
    name,
    propagationPolicy: "Background",
    ...(resourceVersion !== undefined && { body: { preconditions: { resourceVersion } } }),
  };
}
