/**
 * Which retention policy `--prune` applies to a target (issue 16 item 6): the plan's, as `capsule run` applies it
 * after every scheduled backup, so a manual prune never thins a target more than its own schedule would.
 *
 * Precedence, highest first:
 * 1. `--keep-last`, `--keep-daily`, `--keep-weekly`, `--keep-monthly`, `--failed-grace-hours`, each overriding the
 *    same field of the plan's policy and nothing else (field by field: `--keep-last 3` on a plan with keepDaily 7
 *    still keeps the dailies; `--keep-daily 0` drops them explicitly);
 * 2. the target in the plans of `--plans PATH` (hand-written plan files, as `capsule plan` and `capsule start` read);
 * 3. the retention in the target's CronJob (its CAPSULE_TARGET), when the bucket was found through the kube context;
 * 4. nothing found: the flags alone if `--keep-last` is among them, else a refusal naming what to pass — never a
 *    silent default.
 */
import { UsageError } from "clipanion";
import { RUN_ENV } from "../plan/run-contract.js";
import type { EngineName } from "../domain/backup.js";
import { DEFAULT_FAILED_GRACE_HOURS, type RetentionPolicy } from "../storage/retention.js";
import { readRunTarget } from "./run-target.js";

/** The retention flags the operator gave, already checked to be integers in range. */
export type RetentionFlags = Partial<Record<keyof RetentionPolicy, number>>;

/** Each retention field's `--prune` flag, in the order they are checked and described. */
export const FLAG_OF: Readonly<Record<keyof RetentionPolicy, string>> = {
  keepLast: "--keep-last",
  keepDaily: "--keep-daily",
  keepWeekly: "--keep-weekly",
  keepMonthly: "--keep-monthly",
  failedGraceHours: "--failed-grace-hours",
};

/** A target's policy as found, and where it was found (printed beside the decisions). */
export interface FoundPolicy {
  readonly policy: RetentionPolicy;
  readonly source: string;
}

/** The policy applied to one target, with every source that contributed, in precedence order. */
export interface AppliedPolicy extends FoundPolicy {
  readonly target: string;
}

/**
 * The policy for `target`: the flags over what was found. Throws a `UsageError` naming the target and the ways to
 * give a policy when nothing was found and `--keep-last` was not passed.
 */
export function applyFlags(
  target: string,
  found: FoundPolicy | undefined,
  flags: RetentionFlags,
  where: { readonly cluster: string; readonly engine: EngineName; readonly searched: readonly string[] },
): AppliedPolicy {
  const given = (Object.keys(FLAG_OF) as Array<keyof RetentionPolicy>).filter((k) => flags[k] !== undefined);
  const fromFlags = given.map((k) => FLAG_OF[k]).join(" ");
  if (found) {
    return {
      target,
      policy: { ...found.policy, ...flags },
      source: given.length > 0 ? `${fromFlags} over ${found.source}` : found.source,
    };
  }
  if (flags.keepLast === undefined) {
    throw new UsageError(
      `--prune: no retention policy for ${where.engine} target ${target} of cluster ${where.cluster} ` +
        `(${where.searched.length > 0 ? `searched: ${where.searched.join(", ")}` : "no --plans, and the bucket was not found through a kube context"}); ` +
        `pass --plans PATH, or --keep-last N to prune by flags alone`,
    );
  }
  return {
    target,
    policy: { failedGraceHours: DEFAULT_FAILED_GRACE_HOURS, ...flags, keepLast: flags.keepLast },
    source: fromFlags,
  };
}

/** The retention of each `engine` target of `cluster` in the plans at `path` (a directory or one file). */
export async function policiesFromPlans(
  path: string,
  cluster: string,
  engine: EngineName,
): Promise<Map<string, FoundPolicy>> {
  // Loaded here, not with the module: plans, the scanner and the compiler are only for a prune that reads them.
  const { gatherPlans } = await import("./gather-plans.js");
  const { plans } = await gatherPlans({ plans: path });
  const found = new Map<string, FoundPolicy>();
  for (const plan of plans.filter((p) => p.metadata.cluster === cluster)) {
    for (const t of plan.spec.targets.filter((t) => t.engine === engine))
      found.set(t.name, { policy: t.retention, source: `plan ${path}` });
  }
  return found;
}

/**
 * The retention each backup CronJob of `cluster` carries for its `engine` target: exactly what `capsule run` in
 * that CronJob's pods prunes with, read from the CAPSULE_TARGET it is given.
 */
export async function policiesFromCluster(
  cluster: string,
  engine: EngineName,
  env: NodeJS.ProcessEnv,
): Promise<Map<string, FoundPolicy>> {
  // Loaded only here: the Kubernetes client is the slowest import in capsule.
  const { KubeClient } = await import("../k8s/kube-client.js");
  const { Workloads } = await import("../k8s/workloads.js");
  const { ANNOTATIONS, LABELS, MANAGED_BY } = await import("../compiler/cronjob.js");
  const client = new KubeClient(env["KUBECONFIG"] ? { kubeconfig: env["KUBECONFIG"] } : {});
  const cronJobs = await new Workloads(client).cronJobsWithTemplates(
    `${LABELS.managedBy}=${MANAGED_BY},${LABELS.engine}=${engine}`,
  );
  const found = new Map<string, FoundPolicy>();
  for (const c of cronJobs) {
    // Restore-drill CronJobs carry the same target; the backup CronJob is the one whose runs prune.
    if (c.metadata.labels?.[LABELS.job] !== undefined) continue;
    if ((c.metadata.annotations?.[ANNOTATIONS.cluster] ?? c.metadata.labels?.[LABELS.cluster]) !== cluster)
      continue;
    const value = c.spec?.jobTemplate.spec?.template.spec?.containers
      .flatMap((container) => container.env ?? [])
      .find((e) => e.name === RUN_ENV.target)?.value;
    if (value === undefined) continue;
    const target = readRunTarget({ [RUN_ENV.target]: value });
    found.set(target.target, {
      policy: target.retention,
      source: `CronJob ${c.metadata.namespace}/${c.metadata.name}`,
    });
  }
  return found;
}

/** A policy as one short line: `keep-last 3, keep-daily 7, failed-grace-hours 72`. */
export function describePolicy(policy: RetentionPolicy): string {
  return (Object.keys(FLAG_OF) as Array<keyof RetentionPolicy>)
    .filter(
      (k) => policy[k] !== undefined && (k === "keepLast" || k === "failedGraceHours" || policy[k] !== 0),
    )
    .map((k) => `${FLAG_OF[k].slice(2)} ${policy[k]}`)
    .join(", ");
}
