/**
 * GCS settings from the environment, the way Google's client libraries read it: `GOOGLE_APPLICATION_CREDENTIALS`
 * names a key file (else Application Default Credentials: workload identity, the metadata server, gcloud's login),
 * `STORAGE_EMULATOR_HOST` points at an emulator and then no credentials are used. `CAPSULE_GCS_CREDENTIALS_JSON` is a
 * key file's content: what `--cluster` and the daemon read from the cluster's key Secret, kept in memory rather than
 * written to disk (runtime/bucket-access.ts). `CAPSULE_GCS_ENDPOINT` is another
 * endpoint that does take credentials (Private Service Connect). The key file's secrets are registered for redaction
 * the moment it is read.
 */
import { readFileSync } from "node:fs";
import { CapsuleError, ErrorCode, messageOf } from "../domain/errors.js";
import { registerSecret } from "../redact.js";
import type { GcsStoreConfig, GoogleCredentials } from "./gcs-object-store.js";
import { milliseconds } from "./env-settings.js";

export function gcsSettingsFromEnv(env: NodeJS.ProcessEnv): Omit<GcsStoreConfig, "bucket"> {
  const keyFile = env["GOOGLE_APPLICATION_CREDENTIALS"] || undefined;
  const keyJson = env["CAPSULE_GCS_CREDENTIALS_JSON"] || undefined;
  registerSecret(keyJson);
  const credentials = keyJson
    ? parseKey(keyJson, "CAPSULE_GCS_CREDENTIALS_JSON", "the value")
    : keyFile
      ? readKeyFile(keyFile)
      : undefined;
  const emulator = env["STORAGE_EMULATOR_HOST"] || undefined;
  const endpoint = env["CAPSULE_GCS_ENDPOINT"] || undefined;
  const projectId = env["GOOGLE_CLOUD_PROJECT"] || undefined;
  return {
    ...(credentials ? { credentials } : {}),
    ...(emulator ? { endpoint: emulator, emulator: true } : endpoint ? { endpoint } : {}),
    ...(projectId ? { projectId } : {}),
    ...milliseconds(env, "CAPSULE_GCS_RETRY_WINDOW_MS", "retryWindowMs"),
    ...milliseconds(env, "CAPSULE_GCS_REQUEST_TIMEOUT_MS", "requestTimeoutMs"),
    ...milliseconds(env, "CAPSULE_GCS_IDLE_TIMEOUT_MS", "idleTimeoutMs"),
  };
}

/** The key file, refused in one line when missing or malformed; its secrets are kept out of all output. */
function readKeyFile(path: string): GoogleCredentials {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new CapsuleError(
      ErrorCode.Config,
      `GOOGLE_APPLICATION_CREDENTIALS: cannot read the key file ${JSON.stringify(path)} (${(error as { code?: string }).code ?? messageOf(error)})`,
    );
  }
  return parseKey(text, "GOOGLE_APPLICATION_CREDENTIALS", `the key file ${JSON.stringify(path)}`);
}

/** A key's JSON, refused in one line naming `variable` when malformed; never quotes the key itself. */
function parseKey(text: string, variable: string, what: string): GoogleCredentials {
  let key: Record<string, unknown>;
  try {
    key = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new CapsuleError(ErrorCode.Config, `${variable}: ${what} is not JSON`);
  }
  if (key === null || typeof key !== "object" || typeof key["type"] !== "string") {
    throw new CapsuleError(
      ErrorCode.Config,
      `${variable}: ${what} is not a Google credentials file (no "type")`,
    );
  }
  for (const field of ["private_key", "private_key_id", "client_secret", "refresh_token"]) {
    const value = key[field];
    if (typeof value === "string") registerSecret(value);
  }
  return key as unknown as GoogleCredentials;
}
