/**
 * Bucket requests (docs/design.md §10): `<prefix>/<cluster>/requests/<requestId>.json`, and the outcome capsule writes
 * beside each, `<requestId>.outcome.json` (their keys are storage/layout.ts's). Pure: the documents' shape and
 * validation, the HMAC signature of restore requests. Whoever can write to the bucket must not be able to overwrite a
 * database, so a restore request is refused unless restores through the bucket are enabled *and* the request is
 * signed with the key from a Secret.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { canonicalJson } from "../compiler/canonical-json.js";
import { compactStamp, isSafeSegment } from "../domain/backup.js";

/** A request object larger than this is rejected unread. */
export const MAX_REQUEST_BYTES = 64 * 1024;
/** A signed request older (or further in the future) than this is refused: a replayed copy goes stale. */
export const SIGNATURE_MAX_AGE_MS = 60 * 60 * 1000;

export interface BackupRequest {
  readonly action: "backup";
  readonly target: string;
  readonly requestedBy: string;
  readonly requestedAt: string;
}

export interface RestoreRequest {
  readonly action: "restore";
  readonly target: string;
  readonly backupId: string;
  readonly requestedBy: string;
  readonly requestedAt: string;
  /** Hex HMAC-SHA256 of `signedPayload()`. */
  readonly signature: string;
}

export type CapsuleRequest = BackupRequest | RestoreRequest;

export type OutcomeState = "accepted" | "rejected" | "succeeded" | "failed";

export interface RequestOutcome {
  readonly outcomeVersion: 1;
  readonly requestId: string;
  readonly cluster: string;
  readonly action?: string;
  readonly target?: string;
  readonly state: OutcomeState;
  /** Why it was rejected or failed. */
  readonly reason?: string;
  /** The Job that runs it; `created` once the API server has accepted it. */
  readonly job?: { readonly namespace: string; readonly name: string; readonly created: boolean };
  readonly backupId?: string;
  /** The daemon replica that wrote this version. */
  readonly handledBy: string;
  readonly acceptedAt?: string;
  readonly updatedAt: string;
  readonly finishedAt?: string;
}

export const isFinal = (state: OutcomeState): boolean => state !== "accepted";

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

const TARGET = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const MAX_TEXT = 256;

/** A request body → a typed request, or the reason it is rejected (naming the field and value). */
export function parseRequest(bytes: Buffer | string): Parsed<CapsuleRequest> {
  let data: unknown;
  try {
    data = JSON.parse(bytes.toString());
  } catch (error) {
    return { ok: false, reason: `not valid JSON (${(error as Error).message})` };
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    return { ok: false, reason: "must be a JSON object" };
  }
  const r = data as Record<string, unknown>;
  const bad = (field: string, message: string): Parsed<CapsuleRequest> => ({
    ok: false,
    reason: `${field} ${message} (got ${JSON.stringify(r[field]) ?? "nothing"})`,
  });
  if (r["action"] !== "backup" && r["action"] !== "restore")
    return bad("action", 'must be "backup" or "restore"');
  if (typeof r["target"] !== "string" || !TARGET.test(r["target"]) || r["target"].length > 63)
    return bad("target", "must be a target name (a DNS label)");
  if (typeof r["requestedBy"] !== "string" || !printable(r["requestedBy"]))
    return bad("requestedBy", `must be a printable string of 1 to ${MAX_TEXT} characters`);
  if (typeof r["requestedAt"] !== "string" || Number.isNaN(Date.parse(r["requestedAt"])))
    return bad("requestedAt", "must be an ISO-8601 time");
  const common = { target: r["target"], requestedBy: r["requestedBy"], requestedAt: r["requestedAt"] };
  if (r["action"] === "backup") return { ok: true, value: { action: "backup", ...common } };
  if (typeof r["backupId"] !== "string" || !isSafeSegment(r["backupId"]))
    return bad("backupId", "must be a backup id");
  if (typeof r["signature"] !== "string" || !/^[0-9a-f]{64}$/.test(r["signature"]))
    return bad("signature", "must be a hex HMAC-SHA256");
  return {
    ok: true,
    value: { action: "restore", ...common, backupId: r["backupId"], signature: r["signature"] },
  };
}

function printable(text: string): boolean {
  // eslint-disable-next-line no-control-regex
  return text.length > 0 && text.length <= MAX_TEXT && !/[\u0000-\u001f\u007f]/.test(text);
}

/**
 * What a restore request's signature covers: the request without its signature, plus the cluster and request id,
 * as canonical JSON — so a signed request cannot be replayed under another id or against another cluster.
 */
export function signedPayload(
  cluster: string,
  requestId: string,
  request: Omit<RestoreRequest, "signature">,
): string {
  const { action, target, backupId, requestedBy, requestedAt } = request;
  return canonicalJson({ action, backupId, cluster, requestId, requestedAt, requestedBy, target });
}

export function signRequest(
  key: string,
  cluster: string,
  requestId: string,
  request: Omit<RestoreRequest, "signature">,
): string {
  return createHmac("sha256", key)
    .update(signedPayload(cluster, requestId, request))
    .digest("hex");
}

/** Constant-time check of a restore request's signature and freshness; the reason when it fails. */
export function checkSignature(
  key: string,
  cluster: string,
  requestId: string,
  request: RestoreRequest,
  now: Date,
): string | undefined {
  const expected = Buffer.from(signRequest(key, cluster, requestId, request), "hex");
  const given = Buffer.from(request.signature, "hex");
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return "signature does not match";
  const age = now.getTime() - Date.parse(request.requestedAt);
  if (Math.abs(age) > SIGNATURE_MAX_AGE_MS)
    return `requestedAt ${request.requestedAt} is outside the accepted window`;
  return undefined;
}

/** A new request id: sorts by time, unique without coordination. */
export function newRequestId(now: Date, random: string): string {
  return `req-${compactStamp(now)}-${random}`;
}
