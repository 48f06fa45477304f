/**
 * One reconcile pass, the I/O edge around `desiredState()` and `diffWorkloads()`: list CnvrgApps and the CronJobs
 * and Deployments (WAL streamers) capsule manages, load the hand-written plans, compute the diffs, apply them. A failed write of one object is counted
 * and reported and the pass goes on with the others; a failed list (or invalid hand-written plans) fails the pass
 * before any write, because acting on half a picture could delete what should stay. Live objects are read whole, so
 * a hand edit of a field capsule owns is put back (diff.ts, drift.ts). With leader election, every write is fenced:
 * none starts once this replica no longer leads, even in the middle of a pass, and those on the wire are aborted.
 */
import pLimit from "p-limit";
import { LABELS, MANAGED_BY } from "../compiler/cronjob.js";
import { messageOf } from "../domain/errors.js";
import { defined } from "../util/defined.js";
import { listCnvrgAppsVersioned } from "../k8s/cnvrgapps.js";
import type { Events } from "../k8s/events.js";
import { isAlreadyExists, isNotFound, type KubeClient } from "../k8s/kube-client.js";
import type {
  CronJobWithTemplate,
  DeploymentWithTemplate,
  LiveCronJob,
  Workloads,
} from "../k8s/workloads.js";
import type { Logger } from "../log.js";
import type { SourcedPlanDocument } from "../plan/document.js";
import { loadPlans } from "../plan/load.js";
import { CNVRGAPP } from "../domain/cnvrgapp.js";
import { formatSkipped, type SkippedField } from "../scanner/fields.js";
import type { DaemonMetrics } from "../status/metrics.js";
import { desiredState, type DesiredState } from "./desired.js";
import { diffWorkloads, type CompiledObject, type ObservedCronJob, type WorkloadDiff } from "./diff.js";

/** How one kind of object is written: the reconciler's passes treat CronJobs and Deployments alike. */
interface KindWriter<M extends CompiledObject> {
  readonly kind: "CronJob" | "Deployment";
  create(manifest: M, signal: AbortSignal | undefined): Promise<void>;
  replace(manifest: M, resourceVersion: string | undefined, signal: AbortSignal | undefined): Promise<void>;
  delete(live: LiveCronJob, signal: AbortSignal | undefined): Promise<void>;
}

export const MANAGED_SELECTOR = `${LABELS.managedBy}=${MANAGED_BY}`;

export interface ReconcilerOptions {
  readonly kube: KubeClient;
  readonly workloads: Workloads;
  /** Where skipped CnvrgApps are reported; none: log lines only. */
  readonly events?: Events;
  /** CnvrgApps and CronJobs of this namespace only; all namespaces when unset. */
  readonly namespace?: string;
  /** A directory (or file) of hand-written plans, re-read every pass. */
  readonly plansDir?: string;
  readonly image?: string;
  readonly log: Logger;
  readonly metrics?: DaemonMetrics;
  /** Parallel writes. @default 8 */
  readonly writeConcurrency?: number;
  /** New skip reasons reported as Events per pass, at most. @default 50 */
  readonly maxEventsPerPass?: number;
  /**
   * Asked right before each write: the current leadership's signal, aborted when it ends, or undefined when this
   * replica no longer leads. No write starts without one, and writes on the wire are aborted with it.
   * @default writes are not fenced
   */
  readonly fence?: () => AbortSignal | undefined;
}

export interface PassResult {
  readonly created: number;
  readonly replaced: number;
  readonly deleted: number;
  readonly unchanged: number;
  /** Not desired but kept: their plan could not be built this pass. */
  readonly held: number;
  /** Objects whose write failed; the next pass tries again. */
  readonly failed: number;
  /** Writes not made, or aborted, because this replica stopped leading during the pass. */
  readonly fenced: number;
  readonly errors: string[];
  readonly skipped: number;
  /** The CnvrgApp list's resourceVersion: where a watch continues. */
  readonly resourceVersion: string | undefined;
  readonly desired: DesiredState;
}

export class Reconciler {
  private readonly reportedSkips = new Set<string>();

  constructor(private readonly options: ReconcilerOptions) {}

  /** One pass. Rejects only when the world could not be read (nothing was written then). */
  async pass(): Promise<PassResult> {
    const { options } = this;
    const stop = options.metrics?.reconcileDuration.startTimer();
    try {
      const result = await this.run();
      options.metrics?.reconciles.inc({ result: result.failed > 0 ? "partial" : "success" });
      if (result.failed === 0) options.metrics?.reconcileLastSuccess.set(Date.now() / 1000);
      return result;
    } catch (error) {
      options.metrics?.reconciles.inc({ result: "error" });
      throw error;
    } finally {
      stop?.();
    }
  }

  private async run(): Promise<PassResult> {
    const { options } = this;
    const [apps, handWritten, live, liveDeployments] = await Promise.all([
      this.step("list-cnvrgapps", () => listCnvrgAppsVersioned(options.kube, options.namespace)),
      this.step("load-plans", () => this.handWritten()),
      this.step("list-cronjobs", async () =>
        (await options.workloads.cronJobsWithTemplates(MANAGED_SELECTOR, options.namespace)).map(observed),
      ),
      this.step("list-deployments", async () =>
        (await options.workloads.deploymentsWithTemplates(MANAGED_SELECTOR, options.namespace)).map(observed),
      ),
    ]);
    const desired = await this.step("plan", () =>
      Promise.resolve(
        desiredState(
          apps.items,
          handWritten,
          defined({ image: options.image, namespace: options.namespace }),
        ),
      ),
    );
    options.metrics?.managedCronJobs.set(desired.cronJobs.length);
    options.metrics?.managedDeployments.set(desired.deployments.length);
    options.metrics?.skippedTargets.set(desired.skipped.length);
    for (const line of desired.problems) options.log.warn("plan not applied", { problem: line });
    await this.reportSkips(desired.skipped, apps.items);

    const cronJobDiff = diffWorkloads(desired.cronJobs, live, desired.held);
    const deploymentDiff = diffWorkloads(desired.deployments, liveDeployments, desired.held);
    const errors: string[] = [];
    const limit = pLimit(options.writeConcurrency ?? 8);
    const done = { create: 0, replace: 0, delete: 0 };
    let fenced = 0;
    const attempt = async (
      verb: keyof typeof done,
      kind: string,
      what: string,
      write: (signal: AbortSignal | undefined) => Promise<void>,
      reason?: string,
    ): Promise<void> => {
      const signal = options.fence?.();
      const object = { [kind === "CronJob" ? "cronJob" : "deployment"]: what };
      if (options.fence && (!signal || signal.aborted)) {
        fenced++;
        return;
      }
      try {
        await write(signal);
        options.metrics?.reconcileWrites.inc({ verb });
        options.log.info(`${verb}d ${kind}`, { ...object, ...(reason !== undefined && { reason }) });
        done[verb]++;
      } catch (error) {
        if (signal?.aborted) {
          // Cut at the renew deadline: the next leader makes it.
          fenced++;
          return;
        }
        options.metrics?.reconcileErrors.inc({ operation: verb });
        const message = messageOf(error);
        errors.push(message);
        options.log.error(`cannot ${verb} ${kind}`, { ...object, error: message });
      }
    };
    const apply = <M extends CompiledObject>(diff: WorkloadDiff<M>, writer: KindWriter<M>) => {
      const keyOf = (m: M | LiveCronJob) =>
        "metadata" in m ? `${m.metadata.namespace}/${m.metadata.name}` : `${m.namespace}/${m.name}`;
      return [
        ...diff.create.map((m) =>
          limit(() =>
            attempt("create", writer.kind, keyOf(m), async (signal) => {
              try {
                await writer.create(m, signal);
              } catch (error) {
                if (!isAlreadyExists(error)) throw error;
                // Listed by label, so an existing object of that name is not capsule's: never take it over.
                throw new Error(
                  `${writer.kind} ${keyOf(m)} exists but is not labelled ${MANAGED_SELECTOR}: left alone; rename or delete it`,
                );
              }
            }),
          ),
        ),
        ...diff.replace.map(({ desired: m, live: current, reason }) =>
          limit(() =>
            attempt(
              "replace",
              writer.kind,
              keyOf(m),
              (signal) => writer.replace(m, current.resourceVersion, signal),
              reason,
            ),
          ),
        ),
        ...diff.delete.map((current) =>
          limit(() =>
            attempt("delete", writer.kind, keyOf(current), async (signal) => {
              try {
                await writer.delete(current, signal);
              } catch (error) {
                if (!isNotFound(error)) throw error; // already gone is what we wanted
              }
            }),
          ),
        ),
      ];
    };
    const { workloads } = options;
    await Promise.all([
      ...apply(cronJobDiff, {
        kind: "CronJob",
        create: (m, signal) => workloads.createCronJob(m, signal),
        replace: (m, rv, signal) => workloads.replaceCronJob(m, rv, signal),
        delete: (c, signal) => workloads.deleteCronJob(c.namespace, c.name, c.resourceVersion, signal),
      }),
      ...apply(deploymentDiff, {
        kind: "Deployment",
        create: (m, signal) => workloads.createDeployment(m, signal),
        replace: (m, rv, signal) => workloads.replaceDeployment(m, rv, signal),
        delete: (c, signal) => workloads.deleteDeployment(c.namespace, c.name, c.resourceVersion, signal),
      }),
    ]);
    if (fenced > 0)
      options.log.warn("stopped leading during the pass; writes left to the next leader", { fenced });
    return {
      created: done.create,
      replaced: done.replace,
      deleted: done.delete,
      unchanged: cronJobDiff.unchanged + deploymentDiff.unchanged,
      held: cronJobDiff.held.length + deploymentDiff.held.length,
      failed: errors.length,
      fenced,
      errors,
      skipped: desired.skipped.length,
      resourceVersion: apps.resourceVersion,
      desired,
    };
  }

  private handWritten(): Promise<SourcedPlanDocument[]> {
    return this.options.plansDir ? loadPlans(this.options.plansDir) : Promise.resolve([]);
  }

  private async step<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      this.options.metrics?.reconcileErrors.inc({ operation });
      throw error;
    }
  }

  /**
   * A skip is logged (warn) and reported as a Warning Event on its CnvrgApp the first time this process sees it;
   * later passes repeat it at debug level only, so a resync every few minutes does not flood either.
   */
  private async reportSkips(skipped: readonly SkippedField[], apps: readonly unknown[]): Promise<void> {
    const { options } = this;
    const current = new Set<string>();
    let events = 0;
    for (const s of skipped) {
      const line = formatSkipped(s);
      current.add(line);
      if (this.reportedSkips.has(line)) {
        options.log.debug("CnvrgApp skipped", { reason: line });
        continue;
      }
      this.reportedSkips.add(line);
      options.log.warn("CnvrgApp skipped", { reason: line });
      const app = findApp(apps, s.app);
      if (!options.events || !app || events >= (options.maxEventsPerPass ?? 50)) continue;
      events++;
      try {
        await options.events.record(
          { apiVersion: CNVRGAPP.apiVersion, kind: CNVRGAPP.kind, ...app },
          { type: "Warning", reason: "BackupSkipped", message: line },
        );
      } catch (error) {
        options.metrics?.reconcileErrors.inc({ operation: "event" });
        options.log.warn("cannot record Event", { reason: line, error: messageOf(error) });
      }
    }
    // A fixed problem that comes back later is news again.
    for (const line of this.reportedSkips) if (!current.has(line)) this.reportedSkips.delete(line);
  }
}

/** What the diff needs of a live object: identity, labels, annotations and the spec to check for drift. */
function observed(item: CronJobWithTemplate | DeploymentWithTemplate): ObservedCronJob {
  return {
    namespace: item.metadata.namespace,
    name: item.metadata.name,
    resourceVersion: item.metadata.resourceVersion,
    labels: item.metadata.labels ?? {},
    annotations: item.metadata.annotations ?? {},
    spec: item.spec,
  };
}

function findApp(
  apps: readonly unknown[],
  identity: string,
): { namespace: string; name: string; uid?: string } | undefined {
  for (const app of apps) {
    const meta = (app as { metadata?: { namespace?: unknown; name?: unknown; uid?: unknown } } | null)
      ?.metadata;
    if (typeof meta?.namespace !== "string" || typeof meta.name !== "string") continue;
    if (`${meta.namespace}/${meta.name}` !== identity) continue;
    return {
      namespace: meta.namespace,
      name: meta.name,
      ...(typeof meta.uid === "string" && { uid: meta.uid }),
    };
  }
  return undefined;
}
