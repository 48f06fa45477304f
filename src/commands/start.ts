import { Command, Option } from "clipanion";
import {
  defaultIdentity,
  defaultLeaseNamespace,
  parseDuration,
  parseListen,
  tokenFromEnv,
} from "../daemon/config.js";
import { createLogger } from "../log.js";
import { defined } from "../util/defined.js";
import { openBackupStore } from "../runtime/bucket.js";
import { BaseCommand } from "./base-command.js";
import { waitForShutdown } from "../daemon/shutdown.js";

/** `capsule start`: the daemon — reconciler, status API and request watcher, one leader per Lease. */
export class StartCommand extends BaseCommand {
  static override paths = [["start"]];
  static override usage = Command.Usage({
    description: "Run the daemon: keep CronJobs equal to the plan, serve the status API, run bucket requests",
    details: `
      Watches CnvrgApps (all namespaces, or \`--namespace\`), merges them with the hand-written plans of
      \`--plans\`, and keeps the cluster's CronJobs equal to the compiled plan: creates what is missing, replaces
      what changed, deletes capsule's CronJobs that are no longer planned, and touches nothing else. With several
      replicas one leads through a Lease; every replica serves the status API. The status API and the leader's
      request watcher (requests filed under \`<prefix>/<cluster>/requests/\`, run exactly once) read each target's
      own bucket — the one its CronJob writes to, from the Secrets its storage variables name — and \`--bucket\`,
      if given. SIGTERM stops cleanly and releases the Lease.
    `,
    examples: [
      ["Run in a cluster", "capsule start --bucket s3://backups/capsule --token-env CAPSULE_TOKEN"],
      ["One namespace, hand-written plans", "capsule start --namespace cnvrg --plans /etc/capsule/plans"],
    ],
  });

  namespace = Option.String("-n,--namespace", { description: "Manage this namespace only (default: all)" });
  plans = Option.String("--plans", { description: "Directory of hand-written plans, re-read every pass" });
  image = Option.String("--image", { description: "capsule image for scanned plans" });
  bucket = Option.String("--bucket", {
    description:
      "s3://bucket/prefix or file:///dir for the status API and requests (default: $CAPSULE_BUCKET)",
  });
  targetBuckets = Option.Boolean("--target-buckets", true, {
    description:
      "Also read each target's own bucket, from the Secrets its CronJob names (cnvrg's cp-object-storage); --no-target-buckets reads only --bucket",
  });
  endpoint = Option.String("--endpoint", { description: "S3 endpoint URL (default: $AWS_ENDPOINT_URL_S3)" });
  region = Option.String("--region", { description: "S3 region (default: $AWS_REGION)" });
  listen = Option.String("--listen", ":8080", { description: "Status API address, [host]:port" });
  tokenEnv = Option.String("--token-env", {
    description: "Environment variable holding the status API's bearer token",
  });
  allowRequests = Option.Boolean("--allow-requests", false, {
    description: "Let POST /api/v1/clusters/{c}/backups file requests (needs --token-env)",
  });
  resync = Option.String("--resync", "5m", { description: "Full resync period (jittered ±10%)" });
  kubeconfig = Option.String("--kubeconfig", {
    description: "kubeconfig file (default: $KUBECONFIG, ~/.kube/config or in-cluster)",
  });
  leaderElect = Option.Boolean("--leader-elect", true, {
    description: "Elect one leader through a Lease (--no-leader-elect for a single replica)",
  });
  leaseName = Option.String("--lease-name", "capsule-leader", { description: "The Lease's name" });
  leaseNamespace = Option.String("--lease-namespace", {
    description: "The Lease's namespace (default: $POD_NAMESPACE, else the service account's)",
  });
  identity = Option.String("--identity", {
    description: "This replica's name in the Lease (default: pod name)",
  });
  requestPoll = Option.String("--request-poll", "10s", {
    description: "How often the bucket's requests are read",
  });
  bucketRefresh = Option.String("--bucket-refresh", "2m", {
    description: "How often statefiles are read for /metrics and the bucket checked for /readyz",
  });
  allowBucketRestore = Option.Boolean("--allow-bucket-restore", false, {
    description: "Accept HMAC-signed restore requests from the bucket (with --restore-key-env)",
  });
  restoreKeyEnv = Option.String("--restore-key-env", {
    description: "Environment variable (from a Secret) holding the HMAC key for restore requests",
  });

  async run(): Promise<number> {
    const env = this.env;
    const log = createLogger({ write: (line) => this.context.stderr.write(`${line}\n`) });
    const bucketUrl = this.bucket ?? env["CAPSULE_BUCKET"];
    const store = bucketUrl
      ? openBackupStore({ bucket: bucketUrl, endpoint: this.endpoint, region: this.region }, env)
      : undefined;
    const restoreKey = this.restoreKeyEnv === undefined ? undefined : tokenFromEnv(this.restoreKeyEnv, env);
    // Loaded on use: the Kubernetes client is the slowest import in capsule, and other commands do not need it.
    const { Daemon } = await import("../daemon/daemon.js");
    const daemon = new Daemon({
      ...(this.kubeconfig !== undefined && { kube: { kubeconfig: this.kubeconfig } }),
      ...defined({ namespace: this.namespace, plansDir: this.plans, image: this.image }),
      ...(store && { store }),
      targetBuckets: this.targetBuckets,
      listen: parseListen(this.listen),
      ...(this.tokenEnv !== undefined && { token: tokenFromEnv(this.tokenEnv, env) }),
      allowRequests: this.allowRequests,
      resyncMs: parseDuration("--resync", this.resync),
      leaderElection: this.leaderElect,
      lease: { name: this.leaseName, namespace: this.leaseNamespace ?? defaultLeaseNamespace(env) },
      identity: this.identity ?? defaultIdentity(env),
      requestPollMs: parseDuration("--request-poll", this.requestPoll),
      bucketRefreshMs: parseDuration("--bucket-refresh", this.bucketRefresh),
      restore: { enabled: this.allowBucketRestore, ...(restoreKey !== undefined && { hmacKey: restoreKey }) },
      log,
    });
    await daemon.start();
    await waitForShutdown();
    await daemon.stop();
    return 0;
  }
}
