/**
 * A container's environment as the kubelet builds it from the pod spec: plain values, and secretKeyRefs looked up
 * in Secrets (a missing one, unless optional, keeps the container from starting). Shared by the fake kubelet and
 * the tests that run a compiled CronJob's args by hand.
 */
export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } };
}

/** The Secret's decoded values, or undefined when there is no such Secret. */
export type SecretLookup = (name: string) => Readonly<Record<string, string>> | undefined;

export function resolveContainerEnv(
  vars: readonly EnvVar[],
  secret: SecretLookup,
  namespace?: string,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of vars) {
    if (v.value !== undefined) out[v.name] = v.value;
    const ref = v.valueFrom?.secretKeyRef;
    if (!ref) continue;
    const data = secret(ref.name);
    const value = data?.[ref.key];
    if (value === undefined) {
      if (ref.optional) continue;
      // The kubelet's own words (CreateContainerConfigError).
      throw new Error(
        data
          ? `couldn't find key ${ref.key} in Secret ${namespace ? `${namespace}/` : ""}${ref.name}`
          : `secret "${ref.name}" not found`,
      );
    }
    out[v.name] = value;
  }
  return out;
}
