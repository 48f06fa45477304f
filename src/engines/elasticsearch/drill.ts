/**
 * The Elasticsearch drill without a cluster: read the whole export (checksum verified as it streams), parse every
 * line — each document's `_source` must be valid JSON — and compare the documents counted per index with the
 * index trailers, the end record and the fingerprint taken at backup time. A restore into a named verification
 * cluster is `capsule es --restore` with `--url` (and a rename pattern if that cluster is shared).
 */
import { createGunzip } from "node:zlib";
import { CapsuleError, ErrorCode } from "../../domain/errors.js";
import { interruptionOf, throwIfInterrupted } from "../../util/interruption.js";
import { interruptedWith } from "../restore-guards.js";
import type { ArtifactSource } from "../../domain/artifact.js";
import type { EsFingerprint } from "./fingerprint.js";
import { EsClient } from "./client.js";
import { describeConnection, type EsConnection } from "./connection.js";
import { parseLine } from "./format.js";
import { parseRename } from "./indices.js";
import { readLines, restoreElasticsearch } from "./restore.js";

export async function drillElasticsearch(
  source: ArtifactSource,
  options: { cluster?: EsConnection; now?: Date; signal?: AbortSignal } = {},
): Promise<{ method: string; details: string }> {
  const parsed = await parseExport(source, options.signal);
  if (!options.cluster) return parsed;
  const restored = await restoreIntoVerificationCluster(
    source,
    options.cluster,
    options.now ?? new Date(),
    options.signal,
  );
  return {
    method: `${parsed.method}, then ${restored.method}`,
    details: `${parsed.details}; ${restored.details}`,
  };
}

/**
 * Restores every index under a `capsule-verify-<time>-` name (never touching the cluster's own indices), lets the
 * restore compare document counts, and deletes the copies — also when the restore fails or is interrupted.
 */
async function restoreIntoVerificationCluster(
  source: ArtifactSource,
  cluster: EsConnection,
  now: Date,
  signal: AbortSignal | undefined,
): Promise<{ method: string; details: string }> {
  const prefix = `capsule-verify-${now.toISOString().replace(/[-:T]/g, "").slice(0, 14)}-`;
  const names = Object.keys((source.statefile.fingerprint as EsFingerprint | undefined)?.indices ?? {});
  const client = new EsClient(cluster);
  try {
    const outcome = await restoreElasticsearch(cluster, source, {
      rename: parseRename("^(.*)$", `${prefix}$1`)!,
      replace: false,
      ...(signal ? { signal } : {}),
    });
    return {
      method: `a restore into ${describeConnection(cluster)} under ${prefix}*`,
      details: `${outcome.indices.length} indices, ${outcome.docs} documents restored and counted`,
    };
  } catch (error) {
    if (!interruptionOf(signal)) throw error;
    const left = await deleteCopies(client, prefix, names);
    const copies =
      left.length === 0
        ? `its ${prefix}* indices are deleted`
        : `could not delete ${left.join(", ")} on ${describeConnection(cluster)}: delete them`;
    const state = `: the restore drill stopped; ${copies}; the backup's verification is unchanged`;
    throw interruptedWith(signal, state, error) ?? error;
  } finally {
    await deleteCopies(client, prefix, names);
  }
}

/** Deletes the drill's copies; returns those still there. */
async function deleteCopies(client: EsClient, prefix: string, names: string[]): Promise<string[]> {
  const left: string[] = [];
  for (const name of names) {
    await client
      .request("DELETE", `/${encodeURIComponent(prefix + name)}`, { allow: [404] })
      .catch(() => left.push(prefix + name));
  }
  return left;
}

async function parseExport(
  source: ArtifactSource,
  signal?: AbortSignal,
): Promise<{ method: string; details: string }> {
  const fingerprint = source.statefile.fingerprint as EsFingerprint | undefined;
  const input = await source.open();
  const gunzip = createGunzip();
  input.on("error", (error) => gunzip.destroy(error));
  input.pipe(gunzip);
  const counted = new Map<string, number>();
  const differences: string[] = [];
  let ended = false;
  let lineNumber = 0;
  for await (const line of readLines(gunzip)) {
    if (signal?.aborted) input.destroy();
    throwIfInterrupted(signal);
    lineNumber++;
    if (line.length === 0) continue;
    const record = parseLine(line, lineNumber);
    switch (record.capsule) {
      case "index":
        counted.set(record.name, 0);
        break;
      case "doc":
        JSON.parse(record.rawSource);
        counted.set(record.index, (counted.get(record.index) ?? 0) + 1);
        break;
      case "index_end":
        if (counted.get(record.name) !== record.docs) {
          differences.push(
            `${record.name}: ${counted.get(record.name) ?? 0} documents, its trailer says ${record.docs}`,
          );
        }
        break;
      case "end": {
        ended = true;
        const total = [...counted.values()].reduce((a, b) => a + b, 0);
        if (record.docs !== total)
          differences.push(`export holds ${total} documents, its end record says ${record.docs}`);
        break;
      }
      case "header":
        break;
    }
  }
  if (!ended) differences.push("the export ends before its end record");
  for (const [index, { docs }] of Object.entries(fingerprint?.indices ?? {})) {
    const got = counted.get(index);
    if (got === undefined) differences.push(`${index}: missing (fingerprint has ${docs} documents)`);
    else if (got !== docs) differences.push(`${index}: ${got} documents, fingerprint has ${docs}`);
  }
  if (differences.length > 0) {
    throw new CapsuleError(
      ErrorCode.FingerprintMismatch,
      `export does not match the backup: ${differences.slice(0, 5).join("; ")}`,
    );
  }
  const total = [...counted.values()].reduce((a, b) => a + b, 0);
  return {
    method: "full parse of the export (every line and _source), counts against the fingerprint",
    details: `${counted.size} indices, ${total} documents match the fingerprint`,
  };
}
