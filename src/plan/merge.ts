/**
 * Scanned plans + hand-written plan documents → the plans to compile. Per cluster, a hand-written target replaces
 * the scanned target of the same name whole (no deep merge: what the file says is what runs); other scanned targets
 * stay. A hand-written plan's image, storage and pod settings, when given, replace the scanned ones.
 */
import type { SourcedPlanDocument } from "./document.js";
import { PlanError, problem } from "./plan-error.js";
import { resolvePlan } from "./resolve.js";
import type { BackupPlan, Target } from "./types.js";

export function mergePlans(
  scanned: readonly BackupPlan[],
  handWritten: readonly SourcedPlanDocument[],
): BackupPlan[] {
  const byCluster = new Map<string, BackupPlan>(scanned.map((p) => [p.metadata.cluster, p]));
  const definedIn = new Map<string, string>();
  const problems: string[] = [];
  for (const { source, document } of handWritten) {
    const cluster = document.metadata.cluster;
    const earlier = definedIn.get(cluster);
    if (earlier !== undefined) {
      problems.push(problem(source, "/metadata/cluster", `is already planned in ${earlier}`, cluster));
      continue;
    }
    definedIn.set(cluster, source);
    const base = byCluster.get(cluster);
    const resolved = resolvePlan(document, source, base?.spec ?? {});
    if (!resolved.ok) {
      problems.push(...resolved.problems);
      continue;
    }
    const plan = resolved.value;
    const replaced = new Set(plan.spec.targets.map((t) => t.name));
    const kept: Target[] = (base?.spec.targets ?? []).filter((t) => !replaced.has(t.name));
    byCluster.set(cluster, { ...plan, spec: { ...plan.spec, targets: [...kept, ...plan.spec.targets] } });
  }
  if (problems.length > 0) throw new PlanError(problems);
  return [...byCluster.values()].sort((a, b) => compare(a.metadata.cluster, b.metadata.cluster));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
