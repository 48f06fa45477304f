/** The CnvrgApp custom resource capsule reads (docs/design.md §3): its coordinates, and how to recognise one. */
export const CNVRGAPP = {
  group: "mlops.cnvrg.io",
  version: "v1",
  plural: "cnvrgapps",
  kind: "CnvrgApp",
  apiVersion: "mlops.cnvrg.io/v1",
} as const;

/** True for a manifest that is a CnvrgApp; manifests of other kinds (Secrets, …) in the same file are ignored. */
export function isCnvrgApp(manifest: unknown): boolean {
  if (manifest === null || typeof manifest !== "object") return false;
  const { apiVersion, kind } = manifest as { apiVersion?: unknown; kind?: unknown };
  return (
    kind === CNVRGAPP.kind && typeof apiVersion === "string" && apiVersion.startsWith(`${CNVRGAPP.group}/`)
  );
}
