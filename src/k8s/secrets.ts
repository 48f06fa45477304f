/** Reading one key of a Secret (e.g. the HMAC key for signed bucket requests). The value is registered for redaction. */
import { CapsuleError, ErrorCode } from "../domain/errors.js";
import { registerSecret } from "../redact.js";
import type { KubeClient } from "./kube-client.js";

export async function readSecretKey(
  client: KubeClient,
  namespace: string,
  name: string,
  key: string,
): Promise<string> {
  const secret = await client.call(`read Secret ${namespace}/${name}`, () =>
    client.core.readNamespacedSecret({ namespace, name }),
  );
  const encoded = secret.data?.[key];
  if (encoded === undefined) {
    throw new CapsuleError(ErrorCode.Config, `Secret ${namespace}/${name} has no key ${JSON.stringify(key)}`);
  }
  const value = Buffer.from(encoded, "base64").toString("utf8");
  registerSecret(value);
  return value;
}

/**
 * Every key of a Secret, decoded; each value is registered for redaction before it is returned, except those of
 * `notSecret` (keys that name things, such as a bucket, so messages can name them).
 */
export async function readSecret(
  client: KubeClient,
  namespace: string,
  name: string,
  notSecret: ReadonlySet<string> = new Set(),
): Promise<Record<string, string>> {
  const secret = await client.call(`read Secret ${namespace}/${name}`, () =>
    client.core.readNamespacedSecret({ namespace, name }),
  );
  const values: Record<string, string> = {};
  for (const [key, encoded] of Object.entries(secret.data ?? {})) {
    const value = Buffer.from(encoded, "base64").toString("utf8");
    if (!notSecret.has(key)) registerSecret(value);
    values[key] = value;
  }
  return values;
}
