/**
 * The volumes a backup pod needs for its store: a GCS key file as a read-only Secret volume (0400), because the
 * Google client libraries read a path (GOOGLE_APPLICATION_CREDENTIALS) and the key must not pass through the env.
 * Other storage types need none. Only the key the plan names is projected into the volume.
 */
import type { V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import { storageFor } from "../plan/resolve.js";
import { GCS_KEY_VOLUME } from "../plan/run-contract.js";
import type { BackupPlan, Target } from "../plan/types.js";

/** The Secret volume holding a GCS key file, when the target's storage names one. */
export function storageVolumes(
  plan: BackupPlan,
  target: Target,
): { volume: V1Volume; mount: V1VolumeMount }[] {
  const storage = storageFor(plan, target);
  const ref = storage.credentialsSecretRef;
  if (storage.type !== "gcs" || !ref) return [];
  const key = ref.keys.keyFile;
  // Resolution fills every role the type uses; a missing one here is a bug, not a user error.
  if (key === undefined) throw new Error(`secret ${ref.secretName} has no key for role keyFile`);
  return [
    {
      volume: {
        name: GCS_KEY_VOLUME.name,
        secret: {
          secretName: ref.secretName,
          items: [{ key, path: GCS_KEY_VOLUME.file }],
          defaultMode: GCS_KEY_VOLUME.defaultMode,
        },
      },
      mount: { name: GCS_KEY_VOLUME.name, mountPath: GCS_KEY_VOLUME.mountPath, readOnly: true },
    },
  ];
}
