/**
 * Everything `capsule plan` compiles, gathered from its sources: CnvrgApps from files and/or the cluster, scanned;
 * hand-written plans from a directory; merged. The I/O edge around the pure scanner and merge.
 */
import { scan } from "../scanner/scan.js";
import type { SkippedField } from "../scanner/fields.js";
import { readCnvrgApps } from "../scanner/read-manifests.js";
import { loadPlans } from "./load.js";
import { mergePlans } from "./merge.js";
import type { BackupPlan } from "./types.js";

export interface PlanSources {
  /** CnvrgApp manifests: files or folders. */
  readonly fromFiles?: readonly string[];
  /** Read CnvrgApps from the current kube context, optionally one namespace. */
  readonly fromCluster?: { readonly namespace?: string };
  /** A directory (or file) of hand-written plans. */
  readonly plans?: string;
  /** The capsule image for scanned plans. */
  readonly image?: string;
}

export interface GatheredPlans {
  readonly plans: BackupPlan[];
  readonly skipped: SkippedField[];
}

export async function gatherPlans(sources: PlanSources): Promise<GatheredPlans> {
  const apps: unknown[] = [];
  if (sources.fromFiles && sources.fromFiles.length > 0)
    apps.push(...(await readCnvrgApps(sources.fromFiles)));
  if (sources.fromCluster) {
    // Loaded only when asked for: the Kubernetes client is the slowest import in capsule.
    const { listCnvrgApps } = await import("../k8s/cnvrgapps.js");
    apps.push(...(await listCnvrgApps(sources.fromCluster)));
  }
  const scanned = scan(apps, { ...(sources.image !== undefined && { image: sources.image }) });
  const handWritten = sources.plans ? await loadPlans(sources.plans) : [];
  return { plans: mergePlans(scanned.plans, handWritten), skipped: scanned.skipped };
}
