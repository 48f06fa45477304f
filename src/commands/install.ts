import { Command, Option, UsageError } from "clipanion";
import { installManifests, renderInstall } from "../install/manifests.js";
import { INSTALL_DEFAULTS, invalidInstallOption, type InstallOptions } from "../install/options.js";
import { BaseCommand } from "./base-command.js";

/** `capsule install --dry-run`: the daemon's own manifests, for `kubectl apply -f -`. */
export class InstallCommand extends BaseCommand {
  static override paths = [["install"]];
  static override usage = Command.Usage({
    description: "Print the daemon's manifests (Namespace, RBAC, Deployment, Service, PodDisruptionBudget)",
    details: `
      Renders what runs \`capsule start\` in a cluster as multi-document YAML: a Namespace, a ServiceAccount,
      least-privilege RBAC (a ClusterRole, or a Role in \`--watch-namespace\`; Secrets by name only), a Lease Role,
      a hardened Deployment with probes, a Service for the status API and a PodDisruptionBudget; with
      \`--with-monitoring\` also a ServiceMonitor, capsule's alert rules as a PrometheusRule and the Grafana dashboard
      as a ConfigMap for Grafana's sidecar. The same flags give
      the same bytes. capsule does not apply its own install: pipe the output to \`kubectl apply -f -\`.
    `,
    examples: [
      ["Install with the defaults", "capsule install --dry-run | kubectl apply -f -"],
      [
        "One namespace, a pinned image",
        "capsule install --dry-run --watch-namespace cnvrg --image ghcr.io/cnvrg/capsule:1.2.0",
      ],
      [
        "With Prometheus Operator monitoring",
        "capsule install --dry-run --with-monitoring | kubectl apply -f -",
      ],
    ],
  });

  dryRun = Option.Boolean("--dry-run", false, { description: "Print the manifests (required)" });
  namespace = Option.String("-n,--namespace", INSTALL_DEFAULTS.namespace, {
    description: "Namespace the daemon runs in",
  });
  image = Option.String("--image", INSTALL_DEFAULTS.image, { description: "The daemon's image" });
  replicas = Option.String("--replicas", String(INSTALL_DEFAULTS.replicas), {
    description: "Deployment replicas (one leads through a Lease)",
  });
  bucket = Option.String("--bucket", INSTALL_DEFAULTS.bucket, {
    description: "s3://bucket/prefix the daemon reads (CAPSULE_BUCKET)",
  });
  watchNamespace = Option.String("--watch-namespace", {
    description: "Manage this namespace only (a Role/RoleBinding instead of a ClusterRole)",
  });
  withMonitoring = Option.Boolean("--with-monitoring", false, {
    description: "Add a ServiceMonitor, alert rules (PrometheusRule) and the Grafana dashboard (ConfigMap)",
  });
  secrets = Option.Array("--secret", {
    description: `Another Secret the daemon may get, by name (a bucket Secret a plan names); repeatable. Always: ${INSTALL_DEFAULTS.secretNames.join(", ")}`,
  });

  run(): Promise<number> {
    if (!this.dryRun) {
      throw new UsageError(
        "capsule does not apply its own install: run `capsule install --dry-run | kubectl apply -f -`",
      );
    }
    if (!/^\d+$/.test(this.replicas))
      throw new UsageError(`--replicas must be a whole number (got ${JSON.stringify(this.replicas)})`);
    const options: InstallOptions = {
      namespace: this.namespace,
      image: this.image,
      replicas: Number(this.replicas),
      bucket: this.bucket,
      watchNamespace: this.watchNamespace,
      secretNames: [...INSTALL_DEFAULTS.secretNames, ...(this.secrets ?? [])],
      withMonitoring: this.withMonitoring,
    };
    const invalid = invalidInstallOption(options);
    if (invalid !== undefined) throw new UsageError(invalid);
    if (this.output === "json") this.print(JSON.stringify(installManifests(options), null, 2));
    else this.context.stdout.write(renderInstall(options));
    return Promise.resolve(0);
  }
}
