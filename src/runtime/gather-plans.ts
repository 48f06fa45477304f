/**
 * Everything `capsule plan` compiles, gathered from its sources: CnvrgApps from files and/or the cluster, scanned;
 * hand-written plans from a directory; merged. The I/O edge around the pure scanner, loader and merge.
 */
import { CapsuleError, ErrorCode } from "../domain/errors.js";
import { loadPlans } from "../plan/load.js";
import { mergePlans } from "../plan/merge.js";
import type { BackupPlan } from "../plan/types.js";
import type { SkippedField } from "../scanner/fields.js";
import { readCnvrgApps } from "../scanner/read-manifests.js";
import { scan } from "../scanner/scan.js";

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
  if (sources.fromCluster) apps.push(...(await readClusterApps(sources.fromCluster.namespace)));
  const scanned = scan(apps, { ...(sources.image !== undefined && { image: sources.image }) });
  const handWritten = sources.plans ? await loadPlans(sources.plans) : [];
  return { plans: mergePlans(scanned.plans, handWritten), skipped: scanned.skipped };
}

async function readClusterApps(namespace: string | undefined): Promise<unknown[]> {
  // Loaded only when asked for: the Kubernetes client is the slowest import in capsule.
  const [{ KubeApiError, KubeClient }, { listCnvrgAppsVersioned }] = await Promise.all([
    import("../k8s/kube-client.js"),
    import("../k8s/cnvrgapps.js"),
  ]);
  const client = new KubeClient();
  try {
    return (await listCnvrgAppsVersioned(client, namespace)).items;
  } catch (error) {
    if (!(error instanceof KubeApiError)) throw error;
    // For `capsule plan` an API that refuses or does not answer means the kube context is wrong: a config problem.
    const where = `${client.where}${namespace ? ` namespace ${namespace}` : ""}`;
    const detail =
      error.status !== undefined ? `HTTP ${error.status}` : error.message.replace(`${error.operation}: `, "");
    throw new CapsuleError(ErrorCode.Config, `cannot list CnvrgApps (${where}): ${detail}`, { cause: error });
  }
}
