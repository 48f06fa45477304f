/**
 * The Kubernetes connection every adapter in `k8s/` shares: the kube config (a file, KUBECONFIG, ~/.kube/config or
 * the in-cluster service account), the typed API clients of @kubernetes/client-node 2.x with a per-request timeout,
 * and one error type. Nothing outside `k8s/` imports the client library: the rest of capsule sees plain data and
 * `KubeApiError`.
 */
import {
  ApiException,
  Observable,
  type ObservableMiddleware,
  AppsV1Api,
  BatchV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  ServerConfiguration,
  createConfiguration,
  type RequestContext,
  type ResponseContext,
} from "@kubernetes/client-node";
import { CapsuleError, ErrorCode, messageOf } from "../domain/errors.js";
import { redact } from "../redact.js";

export interface KubeClientOptions {
  /** A kubeconfig file; unset: KUBECONFIG, ~/.kube/config, or the in-cluster service account. */
  readonly kubeconfig?: string;
  /** Every API call (watches excepted) is aborted after this long. @default 15000 */
  readonly requestTimeoutMs?: number;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;

/**
 * A failed API call. `status` is the HTTP status (undefined when no answer came: timeout, refused connection),
 * `reason` the Status object's reason (`NotFound`, `AlreadyExists`, `Conflict`, …) when the server sent one.
 */
export class KubeApiError extends CapsuleError {
  constructor(
    readonly operation: string,
    readonly status: number | undefined,
    readonly reason: string | undefined,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(ErrorCode.KubeApi, message, options);
    this.name = "KubeApiError";
  }
}

export const isNotFound = (error: unknown): boolean => error instanceof KubeApiError && error.status === 404;
export const isAlreadyExists = (error: unknown): boolean =>
  error instanceof KubeApiError && error.status === 409 && error.reason === "AlreadyExists";
/** A write lost an optimistic-concurrency race (stale resourceVersion). */
export const isConflict = (error: unknown): boolean =>
  error instanceof KubeApiError && error.status === 409 && error.reason !== "AlreadyExists";

export class KubeClient {
  readonly kubeConfig: KubeConfig;
  readonly apps: AppsV1Api;
  readonly batch: BatchV1Api;
  readonly coordination: CoordinationV1Api;
  readonly core: CoreV1Api;
  readonly custom: CustomObjectsApi;
  /** The context name (or "in-cluster"), for messages. */
  readonly where: string;
  readonly requestTimeoutMs: number;

  constructor(options: KubeClientOptions = {}) {
    const kubeConfig = new KubeConfig();
    try {
      if (options.kubeconfig) kubeConfig.loadFromFile(options.kubeconfig);
      else kubeConfig.loadFromDefault();
    } catch (error) {
      throw new CapsuleError(
        ErrorCode.Config,
        `cannot load the kube config${options.kubeconfig ? ` ${options.kubeconfig}` : ""}: ${messageOf(error)}`,
        { cause: error },
      );
    }
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) {
      throw new CapsuleError(
        ErrorCode.Config,
        `no Kubernetes cluster in the kube config${options.kubeconfig ? ` ${options.kubeconfig}` : ""}`,
      );
    }
    this.kubeConfig = kubeConfig;
    this.where = kubeConfig.getCurrentContext() || "in-cluster";
    const timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.requestTimeoutMs = timeoutMs;
    const configuration = createConfiguration({
      baseServer: new ServerConfiguration(cluster.server, {}),
      authMethods: { default: kubeConfig },
      promiseMiddleware: [
        {
          // client-node sets no timeout of its own: a hung API server would hang the reconciler with it.
          pre: (context: RequestContext) => {
            context.setSignal(AbortSignal.timeout(timeoutMs));
            return Promise.resolve(context);
          },
          post: (context: ResponseContext) => Promise.resolve(context),
        },
      ],
    });
    this.apps = new AppsV1Api(configuration);
    this.batch = new BatchV1Api(configuration);
    this.coordination = new CoordinationV1Api(configuration);
    this.core = new CoreV1Api(configuration);
    this.custom = new CustomObjectsApi(configuration);
  }

  /** Runs one API call, turning whatever the client throws into a `KubeApiError` naming the operation. */
  async call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw toKubeApiError(operation, error);
    }
  }
}

/**
 * Per-call options that also abort the request on `signal`, keeping the client's own timeout (its middleware runs
 * first): leader election aborts a Lease attempt, and the leader's writes, at its renew deadline. The
 * object-parameter API takes observable middleware per call, not the promise kind.
 */
export function abortedBy(signal: AbortSignal | undefined) {
  if (!signal) return undefined;
  const middleware: ObservableMiddleware = {
    pre: (context: RequestContext) => {
      const timeout = context.getSignal();
      context.setSignal(timeout ? AbortSignal.any([timeout, signal]) : signal);
      return new Observable(Promise.resolve(context));
    },
    post: (context: ResponseContext) => new Observable(Promise.resolve(context)),
  };
  return { middlewareMergeStrategy: "append" as const, middleware: [middleware] };
}

/** The Status object of an error body, when there is one. */
interface StatusBody {
  readonly message?: string;
  readonly reason?: string;
}

export function toKubeApiError(operation: string, error: unknown): KubeApiError {
  if (error instanceof KubeApiError) return error;
  if (error instanceof ApiException) {
    const status = statusOf(error.body);
    const detail = status?.message ?? `HTTP ${error.code}`;
    return new KubeApiError(
      operation,
      error.code,
      status?.reason,
      redact(`${operation}: ${detail} (HTTP ${error.code}${status?.reason ? ` ${status.reason}` : ""})`),
      { cause: error },
    );
  }
  const name = (error as { name?: string } | undefined)?.name;
  const timedOut = name === "AbortError" || name === "TimeoutError";
  const message = timedOut ? "no answer in time" : messageOf(error);
  return new KubeApiError(operation, undefined, undefined, redact(`${operation}: ${message}`), {
    cause: error,
  });
}

function statusOf(body: unknown): StatusBody | undefined {
  let parsed: unknown = body;
  if (typeof body === "string") {
    try {
      parsed = JSON.parse(body);
    } catch {
      return undefined;
    }
  }
  if (parsed === null || typeof parsed !== "object") return undefined;
  const { message, reason } = parsed as { message?: unknown; reason?: unknown };
  return {
    ...(typeof message === "string" && { message }),
    ...(typeof reason === "string" && { reason }),
  };
}
