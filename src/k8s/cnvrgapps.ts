/**
 * The one place capsule lists CnvrgApps from a Kubernetes API server (@kubernetes/client-node 1.x, object
 * parameters). Uses the current kube context (KUBECONFIG, ~/.kube/config, or the in-cluster service account).
 * Pages through large lists so thousands of apps do not arrive as one response.
 */
import { ApiException, CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
import { CapsuleError, ErrorCode } from "../errors.js";
import { CNVRGAPP } from "../scanner/cnvrgapp.js";

const PAGE_SIZE = 500;

export interface ListCnvrgAppsOptions {
  /** Only this namespace; all namespaces when unset. */
  readonly namespace?: string;
  /** For tests and embedding; the default kube config otherwise. */
  readonly kubeConfig?: KubeConfig;
}

export async function listCnvrgApps(options: ListCnvrgAppsOptions = {}): Promise<unknown[]> {
  const kubeConfig = options.kubeConfig ?? defaultKubeConfig();
  const api = kubeConfig.makeApiClient(CustomObjectsApi);
  const { group, version, plural } = CNVRGAPP;
  const items: unknown[] = [];
  let next: string | undefined;
  try {
    do {
      const page = { group, version, plural, limit: PAGE_SIZE, ...(next && { _continue: next }) };
      const list = (
        options.namespace
          ? await api.listNamespacedCustomObject({ ...page, namespace: options.namespace })
          : await api.listClusterCustomObject(page)
      ) as { items?: unknown[]; metadata?: { continue?: string } };
      items.push(...(list.items ?? []));
      next = list.metadata?.continue || undefined;
    } while (next);
  } catch (error) {
    const where = `${kubeConfig.getCurrentContext() || "in-cluster"}${options.namespace ? ` namespace ${options.namespace}` : ""}`;
    const detail = error instanceof ApiException ? `HTTP ${error.code}` : (error as Error).message;
    throw new CapsuleError(ErrorCode.Config, `cannot list CnvrgApps (${where}): ${detail}`, { cause: error });
  }
  return items;
}

function defaultKubeConfig(): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  return kubeConfig;
}
