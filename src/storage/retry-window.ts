/**
 * How the cloud adapters ride out a store that is briefly away (docs/adr/0013): a request failing with a transient
 * error is retried with backoff until a window has passed since its first failure, not for a number of attempts, and
 * requests that get no answer are aborted. One policy, so S3, Azure and GCS wait alike; each adapter plugs it into
 * its SDK its own way.
 */

/** How long a request is retried, from its first failure. */
export const DEFAULT_RETRY_WINDOW_MS = 60_000;
/** A request not answered within this long (its body sent and the response headers back) is aborted. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 120_000;
/** A connection that carries no bytes for this long is cut. */
export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
/** Backoff doubling from the base, capped, so a store that comes back is used within seconds. */
const BACKOFF_BASE_MS = 100;
export const BACKOFF_CAP_MS = 5_000;
/**
 * The window until a client has had one answer from the store: an endpoint that was never there (a typo, a wrong
 * port) fails in seconds, not a minute, and a run whose store is down at its start fails before it read a byte.
 */
const FIRST_CONTACT_WINDOW_MS = 10_000;

/**
 * How much longer a request that first failed at `firstFailureAt` may be retried (<= 0: no longer). Both times are
 * `performance.now()`: a wall clock stepped by NTP or a paused VM would end the window at once or never.
 */
export function retryTimeLeft(
  firstFailureAt: number,
  windowMs: number,
  reached: boolean,
  now: number,
): number {
  return firstFailureAt + (reached ? windowMs : Math.min(windowMs, FIRST_CONTACT_WINDOW_MS)) - now;
}

/** The wait before retry number `retries` + 1: half fixed, half jitter, so parts failing together do not come back in lockstep. */
export function backoffMs(retries: number): number {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** retries);
  return ceiling / 2 + (Math.random() * ceiling) / 2;
}
