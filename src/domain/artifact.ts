/**
 * What an engine sees of the bucket: a sink its backup streams into, and a source its restore streams out of. The
 * engines never hold the store, a key or a statefile they could rewrite: checksums, encryption, heartbeats and the
 * commit stay with the run (runtime/ and storage/), whatever the engine does.
 */
import type { Readable } from "node:stream";
import type { Artifact, Statefile } from "./statefile.js";

/** What an upload recorded: the stored bytes' size and digest, and how they were encrypted. */
export type UploadedArtifact = Pick<Artifact, "sizeBytes" | "sha256" | "encryption">;

/**
 * An artifact that child processes write (`pg_dump | zstd`): the sink starts them, into a stream it reads, or, where
 * the store keeps files, straight into the file it opened, so the bytes never pass through capsule.
 */
export interface ArtifactProducer {
  /** Starts the producer and hands its output to `consume`; the first failure, the producer's or `consume`'s, wins. */
  toStream<T>(consume: (output: Readable) => Promise<T>): Promise<T>;
  /**
   * Starts the producer writing into the open file `fd` itself; resolves once it finished cleanly. Absent where the
   * producer cannot be tied to this process (a killed capsule must not leave it writing on).
   */
  readonly toFile?: (fd: number, signal: AbortSignal) => Promise<void>;
}

/** Where a backup's artifact goes: streamed in constant memory, hashed (and encrypted) on the way. */
export interface ArtifactSink {
  /** Resolves once every byte of `body` is stored, with the stored size and digest. */
  uploadArtifact(
    name: string,
    body: Readable | ArtifactProducer,
    options?: { sizeHint?: number },
  ): Promise<UploadedArtifact>;
}

/** One backup's artifact, for a restore or a drill: always checked against the digests its statefile records. */
export interface ArtifactSource {
  readonly backupId: string;
  /** The backup's statefile, read-only: its fingerprint is what a restore compares with. */
  readonly statefile: Readonly<Statefile>;
  /**
   * Rejects, before a byte is read, when the artifact is encrypted and no identity here opens it: so a restore can
   * refuse before it asks the operator anything or touches a server.
   */
  checkReadable(): Promise<void>;
  /** Reads the whole artifact (decrypting it, if encrypted) and rejects unless every digest matches. */
  verify(): Promise<{ sha256: string; sizeBytes: number }>;
  /** The plaintext; the stream errors at its end instead of ending cleanly when a digest does not match. */
  open(): Promise<Readable>;
}
