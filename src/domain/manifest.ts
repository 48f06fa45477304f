/** A Kubernetes object as capsule renders and compares it: every one has an apiVersion, a kind and a name. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata?: { name?: string; namespace?: string };
}

/** Between the documents of a multi-document YAML stream. */
export const DOCUMENT_SEPARATOR = "---\n";
