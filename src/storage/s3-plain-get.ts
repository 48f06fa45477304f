/**
 * GETs of whole small objects (statefiles, catalogs) through the S3 SDK's own parts — its credentials, endpoint
 * rules, SigV4 signer and HTTP handler — without its per-request middleware stack (docs/adr/0020, "Reading
 * statefiles"). A listing that reads 10,000 statefiles spent about 0.7 ms of CPU per GET in that stack, 7 of its 10 s;
 * the S3 server also worked harder for each of its requests. Everything else, and every write, goes through the SDK.
 */
import type { GetObjectCommand, S3Client, S3ClientConfig } from "@aws-sdk/client-s3";
import type { Readable } from "node:stream";
import { loadOnUse } from "../util/load-on-use.js";
import { lostConnection } from "../util/socket-error.js";

const endpoints = loadOnUse<typeof import("@smithy/core/endpoints")>("@smithy/core/endpoints");
const protocols = loadOnUse<typeof import("@smithy/core/protocols")>("@smithy/core/protocols");
const signatureV4 = loadOnUse<typeof import("@smithy/signature-v4")>("@smithy/signature-v4");

/** SHA-256 of no bytes: a GET's payload hash, which S3 requires in a header. */
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/** The SDK's retry strategy (v2), as the client takes it: the adapter's retry window serves plain GETs too. */
export type RetryStrategyV2 = Extract<
  NonNullable<S3ClientConfig["retryStrategy"]>,
  { acquireInitialRetryToken: unknown }
>;
export type RetryToken = Awaited<ReturnType<RetryStrategyV2["acquireInitialRetryToken"]>>;
export type RetryErrorInfo = Parameters<RetryStrategyV2["refreshRetryTokenForRetry"]>[1];

/** The SDK's HTTP handler, as a plain GET calls it (its timeouts and agents are the client's). */
interface PlainHandler {
  handle(request: unknown): Promise<{
    response: { statusCode: number; headers: Record<string, string | undefined>; body: Readable };
  }>;
}

/** An S3 error answer, shaped as the SDK's (name, `$metadata`), so the adapter classifies both alike. */
class S3PlainError extends Error {
  constructor(
    override readonly name: string,
    message: string,
    readonly $metadata: { httpStatusCode?: number; attempts?: number; totalRetryDelay?: number },
  ) {
    super(message);
  }
}

export class S3PlainGet {
  private readonly target: Promise<{
    base: URL;
    signer: InstanceType<typeof import("@smithy/signature-v4").SignatureV4>;
  }>;

  constructor(
    private readonly client: S3Client,
    bucket: string,
    getObject: typeof GetObjectCommand,
    private readonly retry: RetryStrategyV2,
  ) {
    // Resolved once: the bucket's endpoint (path-style or virtual-hosted, FIPS, dual-stack…) by the SDK's own rules.
    this.target = (async () => {
      const config = client.config;
      const endpoint = await endpoints().getEndpointFromInstructions(
        { Bucket: bucket, Key: "k" },
        getObject,
        config as never,
      );
      const scheme = (
        endpoint.properties?.["authSchemes"] as Array<{ signingRegion?: string }> | undefined
      )?.[0];
      const signer = new (signatureV4().SignatureV4)({
        credentials: config.credentials,
        region: scheme?.signingRegion ?? (await config.region()),
        service: "s3",
        sha256: config.sha256,
        uriEscapePath: false,
      });
      return { base: new URL(endpoint.url.href), signer };
    })();
    this.target.catch(() => undefined); // awaited by the first get
  }

  /** The object's bytes and ETag; retried over the adapter's window like any SDK request. */
  async get(key: string): Promise<{ bytes: Buffer; etag?: string }> {
    let current = await this.retry.acquireInitialRetryToken("get");
    let waited = 0;
    for (let attempt = 1; ; attempt++) {
      try {
        const out = await this.once(key);
        this.retry.recordSuccess(current);
        return out;
      } catch (error) {
        let next: RetryToken;
        try {
          next = await this.retry.refreshRetryTokenForRetry(current, { errorType: errorTypeOf(error) });
        } catch {
          // As the SDK reports its attempts, for the adapter's "after N attempts" (a network error too).
          if (typeof error === "object" && error !== null) {
            const meta = (error as { $metadata?: object }).$metadata;
            Object.assign(error, { $metadata: { ...meta, attempts: attempt, totalRetryDelay: waited } });
          }
          throw error;
        }
        waited += next.getRetryDelay();
        await new Promise((r) => setTimeout(r, next.getRetryDelay()));
        current = next;
      }
    }
  }

  private async once(key: string): Promise<{ bytes: Buffer; etag?: string }> {
    const { base, signer } = await this.target;
    const { HttpRequest, escapeUriPath } = protocols();
    const request = new HttpRequest({
      method: "GET",
      protocol: base.protocol,
      hostname: base.hostname,
      ...(base.port ? { port: Number(base.port) } : {}),
      path: `${base.pathname.replace(/\/$/, "")}/${escapeUriPath(key)}`,
      headers: { host: base.host, "x-amz-content-sha256": EMPTY_SHA256 },
    });
    const offset = this.client.config.systemClockOffset ?? 0;
    const signed = await signer.sign(request, { signingDate: new Date(Date.now() + offset) });
    const handler = this.client.config.requestHandler as unknown as PlainHandler;
    const { response } = await handler.handle(signed);
    const bytes = await collect(response.body);
    const status = response.statusCode;
    if (status >= 200 && status < 300) {
      const etag = response.headers["etag"];
      return etag ? { bytes, etag } : { bytes };
    }
    const text = bytes.toString("utf8");
    const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? (status === 404 ? "NotFound" : `HTTP ${status}`);
    const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1] || code;
    throw new S3PlainError(code, message, { httpStatusCode: status });
  }
}

/** As the SDK's standard classification: throttling and transient answers and lost connections are retried. */
function errorTypeOf(error: unknown): RetryErrorInfo["errorType"] {
  if (!(error instanceof S3PlainError)) {
    // No answer (refused, reset, timed out) is worth another try; a credentials or signing failure is not.
    const timedOut = (error as { name?: string } | null)?.name === "TimeoutError";
    return lostConnection(error) || timedOut ? "TRANSIENT" : "CLIENT_ERROR";
  }
  const status = error.$metadata.httpStatusCode ?? 0;
  if (
    status === 429 ||
    ["SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded"].includes(error.name)
  )
    return "THROTTLING";
  if ([500, 502, 503, 504].includes(status)) return "TRANSIENT";
  return "CLIENT_ERROR";
}

async function collect(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}
