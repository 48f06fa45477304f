/**
 * WAL lag of pitr targets (docs/adr/0021), as the status API, the metrics and the page report it: read from the
 * `head.json` the streamer writes beside the segments after every upload. The head is the only source every replica
 * shares — the daemon never connects to a database — so the figures are the streamer's last word:
 *
 * - `lagBytes`   = serverLsn − archivedLsn: WAL the server had written (when the streamer last heard from it) that
 *                  is not yet durable in the bucket.
 * - `lagSeconds` = now − coveredUntil: how far behind the present the newest restorable point is — what a restore
 *                  to "latest" would lose if the server died now. It keeps growing when the streamer stops, so a
 *                  dead streamer shows as lag even without the staleness check.
 * - `headAgeSeconds` = now − updatedAt: how long ago the streamer last wrote its head (a live one does every few
 *                  seconds); a large age means the streamer is down or cut off from the bucket.
 */
import { messageOf } from "../domain/errors.js";
import { parseLsn, type WalHead } from "../domain/wal.js";
import type { BackupStore } from "../storage/backup-store.js";

export interface WalLag {
  readonly cluster: string;
  readonly target: string;
  readonly timeline: number;
  readonly archivedLsn: string;
  readonly serverLsn: string;
  readonly coveredUntil: string;
  readonly updatedAt: string;
  readonly lagBytes: number;
  readonly lagSeconds: number;
  readonly headAgeSeconds: number;
}

/** A target's head, or why it could not be read (a damaged head must show, not hide the target). */
export type WalLagResult =
  WalLag | { readonly cluster: string; readonly target: string; readonly error: string };

const seconds = (ms: number) => Math.max(0, Math.round(ms / 100) / 10);

export function walLag(cluster: string, target: string, head: WalHead, now: Date): WalLag {
  const behind = parseLsn(head.serverLsn) - parseLsn(head.archivedLsn);
  return {
    cluster,
    target,
    timeline: head.timeline,
    archivedLsn: head.archivedLsn,
    serverLsn: head.serverLsn,
    coveredUntil: head.coveredUntil,
    updatedAt: head.updatedAt,
    // The server's LSN is a later report than the archive's position, so never negative; a number is exact to 8 PiB.
    lagBytes: behind > 0n ? Number(behind) : 0,
    lagSeconds: seconds(now.getTime() - Date.parse(head.coveredUntil)),
    headAgeSeconds: seconds(now.getTime() - Date.parse(head.updatedAt)),
  };
}

/** The lag of each of `targets` that has a head in `store`; targets without one (not pitr) are left out. */
export async function readWalLags(
  store: BackupStore,
  cluster: string,
  targets: Iterable<string>,
  now: () => Date,
): Promise<WalLagResult[]> {
  const results = await Promise.all(
    [...new Set(targets)].sort().map(async (target): Promise<WalLagResult | undefined> => {
      try {
        const head = await store.walArchive(cluster, target).readHead();
        return head && walLag(cluster, target, head, now());
      } catch (error) {
        return { cluster, target, error: messageOf(error) };
      }
    }),
  );
  return results.filter((r): r is WalLagResult => r !== undefined);
}

export function isWalLag(result: WalLagResult): result is WalLag {
  return !("error" in result);
}
