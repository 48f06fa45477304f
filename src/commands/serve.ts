import { Command, Option } from "clipanion";
import { parseDuration, parseListen, tokenFromEnv } from "../daemon/config.js";
import { createLogger } from "../log.js";
import { openBackupStore } from "../runtime/bucket.js";
import { BaseCommand } from "./base-command.js";
import { waitForShutdown } from "../daemon/shutdown.js";

/** `capsule serve`: the status API alone, over a bucket; no Kubernetes access needed. */
export class ServeCommand extends BaseCommand {
  static override paths = [["serve"]];
  static override usage = Command.Usage({
    description: "Serve the status HTTP API (health, metrics, clusters and backups) over a bucket",
    details: `
      Reads statefiles from \`--bucket\` and serves /healthz, /readyz, /metrics and /api/v1/clusters/…; needs
      no Kubernetes access. With \`--token-env\`, /metrics and /api/ require that bearer token.
    `,
    examples: [["Serve a bucket on port 8080", "capsule serve --bucket s3://backups/capsule"]],
  });

  bucket = Option.String("--bucket", {
    description: "s3://bucket/prefix or file:///dir (default: $CAPSULE_BUCKET)",
  });
  endpoint = Option.String("--endpoint", { description: "S3 endpoint URL (default: $AWS_ENDPOINT_URL_S3)" });
  region = Option.String("--region", { description: "S3 region (default: $AWS_REGION)" });
  listen = Option.String("--listen", ":8080", { description: "Address, [host]:port" });
  tokenEnv = Option.String("--token-env", { description: "Environment variable holding the bearer token" });
  allowRequests = Option.Boolean("--allow-requests", false, {
    description: "Let POST /api/v1/clusters/{c}/backups file requests (needs --token-env)",
  });
  bucketRefresh = Option.String("--bucket-refresh", "2m", {
    description: "How often statefiles are read for /metrics",
  });

  async run(): Promise<number> {
    const env = this.env;
    const log = createLogger({ write: (line) => this.context.stderr.write(`${line}\n`) });
    const store = openBackupStore({ bucket: this.bucket, endpoint: this.endpoint, region: this.region }, env);
    // Loaded on use: the Kubernetes client is the slowest import in capsule, and other commands do not need it.
    const { Daemon } = await import("../daemon/daemon.js");
    const daemon = new Daemon({
      statusOnly: true,
      store,
      listen: parseListen(this.listen),
      ...(this.tokenEnv !== undefined && { token: tokenFromEnv(this.tokenEnv, env) }),
      allowRequests: this.allowRequests,
      bucketRefreshMs: parseDuration("--bucket-refresh", this.bucketRefresh),
      lease: { name: "", namespace: "" },
      identity: "serve",
      log,
    });
    await daemon.start();
    await waitForShutdown();
    await daemon.stop();
    return 0;
  }
}
