/**
 * The object store and prefix behind a BackupStore, for tests that do what capsule itself never does: forge or damage
 * statefiles and artifacts, file requests by hand, read back exactly what was written. capsule goes through
 * BackupStore's methods; the fields are private to TypeScript only, and tests reach around that here, on purpose,
 * in one place.
 */
import type { BackupStore } from "../../src/storage/backup-store.js";
import type { ObjectStore } from "../../src/storage/object-store.js";

interface Inside {
  readonly objects: ObjectStore;
  readonly prefix: string;
}

export function objectsOf(store: BackupStore): ObjectStore {
  return (store as unknown as Inside).objects;
}

export function prefixOf(store: BackupStore): string {
  return (store as unknown as Inside).prefix;
}
