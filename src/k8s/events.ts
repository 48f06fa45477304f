/**
 * Kubernetes Events (core/v1) about the objects capsule reads, e.g. a CnvrgApp whose backup is skipped, so
 * `kubectl describe cnvrgapp` shows the reason next to the object. Best effort: the caller logs a failure.
 */
import { randomBytes } from "node:crypto";
import type { CoreV1Event } from "@kubernetes/client-node";
import type { KubeClient } from "./kube-client.js";

export interface EventTarget {
  readonly apiVersion: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string;
}

export interface EventNote {
  readonly type: "Normal" | "Warning";
  /** UpperCamelCase, e.g. BackupSkipped. */
  readonly reason: string;
  readonly message: string;
}

/** Event messages are cut here: the API server rejects messages over 1 KiB on new-style events. */
const MAX_MESSAGE = 1024;

export class Events {
  constructor(
    private readonly client: KubeClient,
    /** Who reports: the daemon's identity (pod name). */
    private readonly instance: string,
  ) {}

  async record(target: EventTarget, note: EventNote, now: Date = new Date()): Promise<void> {
    const namespace = target.namespace;
    // Like client-go's recorder: the object's name plus a unique suffix.
    const name = `${target.name}.${now.getTime().toString(16)}${randomBytes(3).toString("hex")}`;
    const body: CoreV1Event = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name, namespace },
      involvedObject: {
        apiVersion: target.apiVersion,
        kind: target.kind,
        namespace,
        name: target.name,
        ...(target.uid && { uid: target.uid }),
      },
      type: note.type,
      reason: note.reason,
      message:
        note.message.length > MAX_MESSAGE ? `${note.message.slice(0, MAX_MESSAGE - 1)}…` : note.message,
      source: { component: "capsule" },
      reportingComponent: "capsule.cnvrg.io/daemon",
      reportingInstance: this.instance,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    await this.client.call(`create Event in ${namespace}`, () =>
      this.client.core.createNamespacedEvent({ namespace, body }),
    );
  }
}
