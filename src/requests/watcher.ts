/**
 * The S3 watcher (docs/design.md §10): polls `<prefix>/<cluster>/requests/` and runs each request exactly once.
 *
 * Exactly once, across restarts and replicas, rests on two conditional writes and one unique name:
 * 1. the outcome object is created with `If-None-Match: *` as `accepted` (or `rejected`): of two watchers that see
 *    the same new request, one wins, the other gets 412 and leaves it;
 * 2. the Job's name is derived from the request id, so the API server itself refuses a second Job for it;
 * 3. the outcome is then updated with `If-Match` (its ETag): `job.created`, and finally `succeeded`/`failed` with the
 *    backup id found through the statefile's `trigger.requestId` (a restore: the statefile's restore record that
 *    carries the request id).
 * A watcher that dies between 1 and 3 leaves an `accepted` outcome that the next poll (of any replica) finishes:
 * it creates the Job unless a statefile already records the request, and never creates one after `job.created`.
 * A signed restore request (when enabled) runs `capsule run --restore ID` in a Job from the target's CronJob that is
 * never retried; the restore itself is the engines' non-destructive default.
 * A malformed request, an unknown target or a refused restore gets a `rejected` outcome; nothing a request holds
 * can crash the loop.
 */
import { RepeatingTask } from "../util/repeating-task.js";
import pLimit from "p-limit";
import type { CronJobManifest } from "../compiler/cronjob.js";
import { LABELS } from "../compiler/cronjob.js";
import { NotFoundError, PreconditionFailedError, messageOf } from "../domain/errors.js";
import { isAlreadyExists } from "../k8s/kube-client.js";
import type { Workloads } from "../k8s/workloads.js";
import type { Logger } from "../log.js";
import { redact, registerSecret } from "../redact.js";
import type { BackupStore } from "../storage/backup-store.js";
import { isEngine, type EngineName } from "../domain/backup.js";
import { requestJob, requestJobName } from "./job.js";
import {
  MAX_REQUEST_BYTES,
  checkSignature,
  isFinal,
  parseRequest,
  type CapsuleRequest,
  type RequestOutcome,
} from "./request.js";

export interface RestorePolicy {
  /** Restore requests through the bucket are refused unless this is true. @default false */
  readonly enabled: boolean;
  /** The HMAC key restore requests must be signed with. */
  readonly hmacKey?: string;
}

/**
 * What the watcher counts. Declared here, not imported from status/, so requests/ depends on nothing above it; the
 * daemon passes its Prometheus metrics, which have this shape.
 */
export interface RequestMetrics {
  /** Requests that reached a final outcome. */
  readonly requests: { inc(labels: { action: string; outcome: string }): void };
  /** Polls or requests that failed and are retried on the next poll. */
  readonly requestErrors: { inc(): void };
}

export interface RequestWatcherOptions {
  readonly store: BackupStore;
  readonly workloads: Workloads;
  /** Clusters whose requests folder is polled. */
  readonly clusters: () => Iterable<string>;
  /** The compiled CronJob of a target, if the cluster has that target. */
  readonly cronJobOf: (cluster: string, target: string) => CronJobManifest | undefined;
  /** The CronJob a restore Job is made from (one that carries the target's age identity); default: `cronJobOf`. */
  readonly restoreCronJobOf?: (cluster: string, target: string) => CronJobManifest | undefined;
  readonly identity: string;
  readonly log: Logger;
  readonly metrics?: RequestMetrics;
  readonly restore?: RestorePolicy;
  /** @default 10000 */
  readonly pollMs?: number;
  readonly now?: () => Date;
}

export class RequestWatcher {
  /** Requests known to be finished: not read again by this process. */
  private readonly finished = new Set<string>();
  private readonly task: RepeatingTask;
  private readonly now: () => Date;

  constructor(private readonly options: RequestWatcherOptions) {
    this.now = options.now ?? (() => new Date());
    registerSecret(options.restore?.hmacKey);
    this.task = new RepeatingTask(
      () => this.pollOnce(),
      () => options.pollMs ?? 10_000,
      (error) => {
        options.metrics?.requestErrors.inc();
        options.log.error("request poll failed", { error: messageOf(error) });
      },
    );
  }

  start(): void {
    this.task.start();
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  /** One poll of every cluster's requests folder. A failure in one request never stops the others. */
  async pollOnce(): Promise<void> {
    const limit = pLimit(4);
    await Promise.all([...new Set(this.options.clusters())].map((c) => limit(() => this.pollCluster(c))));
  }

  private async pollCluster(cluster: string): Promise<void> {
    for (const { id, sizeBytes, hasOutcome } of await this.options.store.listRequests(cluster)) {
      const key = `${cluster}/${id}`;
      if (this.finished.has(key)) continue;
      try {
        await this.handle(cluster, id, sizeBytes, hasOutcome);
      } catch (error) {
        this.options.metrics?.requestErrors.inc();
        this.options.log.warn("request not handled; retrying on the next poll", {
          cluster,
          requestId: id,
          error: messageOf(error),
        });
      }
    }
  }

  private async handle(cluster: string, id: string, size: number, hasOutcome: boolean): Promise<void> {
    if (hasOutcome) {
      const current = await this.readOutcome(cluster, id);
      if (current) {
        if (isFinal(current.outcome.state)) this.finished.add(`${cluster}/${id}`);
        else await this.followUp(cluster, id, current.outcome, current.etag);
        return;
      }
    }
    await this.accept(cluster, id, size);
  }

  /** A new request: decide, and claim it by creating its outcome; the winner of the claim creates the Job. */
  private async accept(cluster: string, id: string, size: number): Promise<void> {
    const { store, log } = this.options;
    const reject = (reason: string, fields: { action?: string; target?: string } = {}) =>
      this.claim(cluster, id, { state: "rejected", reason, ...fields });
    if (size > MAX_REQUEST_BYTES)
      return void (await reject(`request is ${size} bytes; at most ${MAX_REQUEST_BYTES}`));
    const bytes = await unless(store.readRequest(cluster, id), NotFoundError);
    if (!bytes) return; // withdrawn between list and read
    const parsed = parseRequest(bytes);
    if (!parsed.ok) return void (await reject(parsed.reason));
    const request = parsed.value;
    const fields = { action: request.action, target: request.target };
    if (request.action === "restore") {
      const policy = this.options.restore;
      if (!policy?.enabled)
        return void (await reject("restore requests through the bucket are disabled", fields));
      if (!policy.hmacKey)
        return void (await reject("no HMAC key is configured for restore requests", fields));
      const problem = checkSignature(policy.hmacKey, cluster, id, request, this.now());
      if (problem) return void (await reject(`restore request refused: ${problem}`, fields));
    }
    const cronJob = this.templateOf(cluster, request.target, request.action);
    if (!cronJob) return void (await reject(`cluster ${cluster} has no target ${request.target}`, fields));
    const job = {
      namespace: cronJob.metadata.namespace,
      name: requestJobName(cronJob.metadata.name, cluster, id),
      created: false,
    };
    const claimed = await this.claim(cluster, id, {
      state: "accepted",
      ...fields,
      ...(request.action === "restore" && { backupId: request.backupId }),
      job,
    });
    if (!claimed) return;
    log.info("request accepted", {
      cluster,
      requestId: id,
      target: request.target,
      job: `${job.namespace}/${job.name}`,
    });
    await this.followUp(cluster, id, claimed.outcome, claimed.etag);
  }

  /**
   * Creates the outcome if there is none yet. Undefined when another watcher claimed the request first.
   */
  private async claim(
    cluster: string,
    id: string,
    fields: Pick<RequestOutcome, "state"> & Partial<RequestOutcome>,
  ): Promise<Stored | undefined> {
    const at = this.now().toISOString();
    const outcome: RequestOutcome = {
      outcomeVersion: 1,
      requestId: id,
      cluster,
      ...fields,
      ...(fields.reason !== undefined && { reason: redact(fields.reason) }),
      handledBy: this.options.identity,
      ...(fields.state === "accepted" ? { acceptedAt: at } : { finishedAt: at }),
      updatedAt: at,
    };
    return this.write(cluster, id, outcome, { ifNoneMatch: "*" });
  }

  /** An accepted request: make sure its Job exists (once), then record how it ended. */
  private async followUp(
    cluster: string,
    id: string,
    outcome: RequestOutcome,
    etag: string | undefined,
  ): Promise<void> {
    const job = outcome.job;
    const target = outcome.target;
    const fail = (reason: string, backupId?: string) =>
      this.update(cluster, id, outcome, etag, { state: "failed", reason, ...(backupId && { backupId }) });
    if (!job || !target) return void (await fail("outcome has no Job; cannot follow it"));
    const { workloads } = this.options;
    if (!job.created) {
      // A previous watcher may have created the Job and died before recording it: a statefile tells.
      const ran =
        outcome.action === "restore"
          ? await this.restoreOf(cluster, target, outcome.backupId, id)
          : await this.backupOf(cluster, target, id);
      if (!ran) {
        const cronJob = this.templateOf(cluster, target, outcome.action);
        if (!cronJob) return void (await fail(`cluster ${cluster} no longer has target ${target}`));
        const request = await this.readRequest(cluster, id);
        // Whoever can write to the bucket can rewrite a request (or its outcome) after it was accepted: a restore
        // runs only what a valid signature covers, checked again right before its Job is made.
        const restoreProblem =
          outcome.action === "restore" ? this.restoreProblem(cluster, id, request, outcome) : undefined;
        if (restoreProblem) return void (await fail(`restore request not run: ${restoreProblem}`));
        try {
          await workloads.createJob(
            requestJob(cronJob, {
              cluster,
              requestId: id,
              requestedBy: request?.requestedBy ?? "",
              ...(request?.action === "restore" && {
                restore: { target, backupId: request.backupId },
              }),
            }),
          );
        } catch (error) {
          if (!isAlreadyExists(error)) throw error; // a concurrent watcher created it: same request, same Job
        }
      }
      const next = await this.update(cluster, id, outcome, etag, { job: { ...job, created: true } });
      if (!next) return;
      outcome = next.outcome;
      etag = next.etag;
    }
    const phase = await workloads.jobPhase(job.namespace, job.name);
    if (phase === "active") return;
    if (outcome.action === "restore") return this.finishRestore(cluster, id, outcome, etag, phase);
    const backup = await this.backupOf(cluster, target, id);
    if (phase === "succeeded" || (phase === undefined && backup?.state === "succeeded")) {
      await this.update(cluster, id, outcome, etag, {
        state: "succeeded",
        ...(backup && { backupId: backup.backupId }),
      });
    } else {
      await fail(
        phase === "failed"
          ? `Job ${job.namespace}/${job.name} failed`
          : `Job ${job.namespace}/${job.name} no longer exists and no succeeded backup records this request`,
        backup?.backupId,
      );
    }
  }

  private restoreProblem(
    cluster: string,
    id: string,
    request: CapsuleRequest | undefined,
    outcome: RequestOutcome,
  ): string | undefined {
    const key = this.options.restore?.enabled ? this.options.restore.hmacKey : undefined;
    if (!key) return "restore requests through the bucket are disabled";
    if (request?.action !== "restore") return "the request vanished or is no longer a restore";
    if (request.backupId !== outcome.backupId || request.target !== outcome.target)
      return "the request changed after it was accepted";
    return checkSignature(key, cluster, id, request, this.now());
  }

  /** The CronJob a request's Job is made from. */
  private templateOf(
    cluster: string,
    target: string,
    action: string | undefined,
  ): CronJobManifest | undefined {
    const restoreOf = this.options.restoreCronJobOf;
    return action === "restore" && restoreOf
      ? restoreOf(cluster, target)
      : this.options.cronJobOf(cluster, target);
  }

  /** A restore's Job ended (or vanished): the backup's statefile says how the restore went. */
  private async finishRestore(
    cluster: string,
    id: string,
    outcome: RequestOutcome,
    etag: string | undefined,
    phase: "succeeded" | "failed" | undefined,
  ): Promise<void> {
    const job = outcome.job!;
    const record = await this.restoreOf(cluster, outcome.target!, outcome.backupId, id);
    if (record?.result === "succeeded") {
      await this.update(cluster, id, outcome, etag, { state: "succeeded" });
      return;
    }
    await this.update(cluster, id, outcome, etag, {
      state: "failed",
      reason: record?.message
        ? `restore failed: ${record.message}`
        : phase === undefined
          ? `Job ${job.namespace}/${job.name} no longer exists and no restore records this request`
          : `Job ${job.namespace}/${job.name} ${phase === "failed" ? "failed" : "ended"} without recording a successful restore`,
    });
  }

  /** The engine of a target, from its CronJob's label. */
  private engineOf(cluster: string, target: string): EngineName | undefined {
    const engine = this.options.cronJobOf(cluster, target)?.metadata.labels[LABELS.engine];
    return engine !== undefined && isEngine(engine) ? engine : undefined;
  }

  /** The restore a request ran, found by the request id in the backup's restore records. */
  private async restoreOf(
    cluster: string,
    target: string,
    backupId: string | undefined,
    id: string,
  ): Promise<{ result: string; message?: string } | undefined> {
    const engine = this.engineOf(cluster, target);
    if (!backupId || !engine) return undefined;
    const entry = await unless(this.options.store.get({ cluster, engine, backupId }), NotFoundError);
    return entry?.statefile?.restores.findLast((r) => r.requestId === id);
  }

  /** Conditional update of the outcome; undefined when someone else changed it first (they carry on). */
  private async update(
    cluster: string,
    id: string,
    outcome: RequestOutcome,
    etag: string | undefined,
    change: Partial<RequestOutcome>,
  ): Promise<Stored | undefined> {
    const at = this.now().toISOString();
    const next: RequestOutcome = {
      ...outcome,
      ...change,
      ...(change.reason !== undefined && { reason: redact(change.reason) }),
      handledBy: this.options.identity,
      updatedAt: at,
      ...(change.state !== undefined && isFinal(change.state) && { finishedAt: at }),
    };
    const written = await this.write(cluster, id, next, { ifMatch: etag });
    if (written && !isFinal(next.state) && change.state === undefined)
      this.options.log.debug("request updated", { cluster, requestId: id });
    return written;
  }

  /** Writes the outcome under `condition`; undefined when the condition failed (someone else wrote first). */
  private async write(
    cluster: string,
    id: string,
    outcome: RequestOutcome,
    condition: Parameters<BackupStore["writeOutcome"]>[3],
  ): Promise<Stored | undefined> {
    const serialized = `${JSON.stringify(outcome, null, 2)}\n`;
    const written = await unless(
      this.options.store.writeOutcome(cluster, id, serialized, condition),
      PreconditionFailedError,
    );
    if (written && isFinal(outcome.state)) this.finish(cluster, id, outcome);
    return written && { outcome, etag: written.etag };
  }

  private finish(cluster: string, id: string, outcome: RequestOutcome): void {
    this.finished.add(`${cluster}/${id}`);
    this.options.metrics?.requests.inc({ action: outcome.action ?? "unknown", outcome: outcome.state });
    const fields = {
      cluster,
      requestId: id,
      state: outcome.state,
      ...(outcome.reason && { reason: outcome.reason }),
      ...(outcome.backupId && { backupId: outcome.backupId }),
    };
    if (outcome.state === "succeeded") this.options.log.info("request done", fields);
    else this.options.log.warn("request not done", fields);
  }

  private async readOutcome(cluster: string, id: string): Promise<Stored | undefined> {
    // An unreachable bucket rejects here, and the request is retried on the next poll.
    const stored = await this.options.store.readOutcome(cluster, id);
    if (!stored) return undefined;
    const { key, bytes, etag } = stored;
    try {
      const outcome = JSON.parse(bytes.toString()) as RequestOutcome;
      if (outcome.requestId !== id || typeof outcome.state !== "string") throw new Error("not an outcome");
      return { outcome, etag };
    } catch (error) {
      // Someone wrote garbage over our record: we cannot know whether it ran, so never run it (again).
      this.finished.add(`${cluster}/${id}`);
      this.options.log.error("unreadable request outcome; request left alone", {
        cluster,
        requestId: id,
        key,
        error: messageOf(error),
      });
      return {
        outcome: {
          outcomeVersion: 1,
          requestId: id,
          cluster,
          state: "failed",
          handledBy: "?",
          updatedAt: "",
        },
        etag: undefined,
      };
    }
  }

  private async readRequest(cluster: string, id: string): Promise<CapsuleRequest | undefined> {
    const bytes = await unless(this.options.store.readRequest(cluster, id), NotFoundError);
    const parsed = bytes && parseRequest(bytes);
    return parsed?.ok ? parsed.value : undefined;
  }

  /** The backup a request produced, found by the statefile's `trigger.requestId`. */
  private async backupOf(
    cluster: string,
    target: string,
    id: string,
  ): Promise<{ backupId: string; state: string } | undefined> {
    const engine = this.engineOf(cluster, target);
    const entries = await this.options.store.list({ cluster, target, ...(engine && { engine }) });
    const entry = entries.find((e) => e.statefile?.trigger.requestId === id);
    return entry && { backupId: entry.ref.backupId, state: entry.state };
  }
}

/** An outcome as stored, with the ETag its next conditional update must match. */
type Stored = { outcome: RequestOutcome; etag: string | undefined };

/** `promise`'s value, or undefined when it rejects with a `kind` error. */
async function unless<T>(promise: Promise<T>, kind: new (message: string) => Error): Promise<T | undefined> {
  try {
    return await promise;
  } catch (error) {
    if (error instanceof kind) return undefined;
    throw error;
  }
}
