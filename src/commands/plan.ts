import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Command, Option, UsageError } from "clipanion";
import { compile, compileYaml, DOCUMENT_SEPARATOR } from "../compiler/compile.js";
import { gatherPlans } from "../runtime/gather-plans.js";
import type { BackupPlan } from "../plan/types.js";
import { formatSkipped } from "../scanner/fields.js";
import { BaseCommand } from "./base-command.js";

const DEFAULT_PLANS_DIR = "plans";
const WRITE_CHUNK = 1 << 20;

/** `capsule plan`: CnvrgApps and hand-written plans → the CronJobs that would run them. */
export class PlanCommand extends BaseCommand {
  static override paths = [["plan"]];
  static override usage = Command.Usage({
    description: "Compile backup plans into CronJobs",
    details: `
      Scans CnvrgApps (from manifest files with \`--from-files\`, or from the current kube context with
      \`--from-cluster\`), merges them with the hand-written plans in \`--plans\` (default \`./plans\` when it exists;
      a hand-written target replaces the scanned one of the same cluster and name) and prints the CronJobs as
      multi-document YAML. \`-o json\` prints the resolved plans instead. \`--out DIR\` writes one file per cluster.
      A CnvrgApp field capsule cannot use skips its target (or app) with one line on stderr; the rest is planned.
    `,
    examples: [
      [
        "Preview the CronJobs of a folder of CnvrgApp manifests",
        "capsule plan --dry-run --from-files manifests/",
      ],
      ["Compile only the hand-written plans", "capsule plan --dry-run --plans plans"],
      ["Write one file per cluster from the live cluster", "capsule plan --from-cluster --out compiled/"],
    ],
  });

  dryRun = Option.Boolean("--dry-run", false, { description: "Print what would be applied; change nothing" });
  fromFiles = Option.Array("--from-files", [], { description: "CnvrgApp manifest files or folders" });
  morePaths = Option.Rest({ name: "path" });
  fromCluster = Option.Boolean("--from-cluster", false, {
    description: "Read CnvrgApps from the kube context",
  });
  namespace = Option.String("-n,--namespace", { description: "With --from-cluster: only this namespace" });
  plans = Option.String("--plans", { description: "Directory of hand-written plans (default: ./plans)" });
  out = Option.String("--out", { description: "Write one YAML file per cluster into this directory" });
  image = Option.String("--image", { description: "capsule image for scanned plans" });

  async run(): Promise<number> {
    if (this.morePaths.length > 0 && this.fromFiles.length === 0) {
      throw new UsageError(`unexpected argument ${this.morePaths[0]}: manifest paths follow --from-files`);
    }
    if (this.namespace !== undefined && !this.fromCluster)
      throw new UsageError("--namespace needs --from-cluster");
    if (!this.dryRun && this.out === undefined) {
      throw new UsageError(
        "capsule plan applies nothing itself: use --dry-run to print, or --out DIR to write files",
      );
    }
    const { plans, skipped } = await gatherPlans({
      fromFiles: [...this.fromFiles, ...this.morePaths],
      ...(this.fromCluster && {
        fromCluster: { ...(this.namespace !== undefined && { namespace: this.namespace }) },
      }),
      ...(this.plansDir() !== undefined && { plans: this.plansDir() }),
      ...(this.image !== undefined && { image: this.image }),
    });
    for (const s of skipped) this.context.stderr.write(`capsule: ${formatSkipped(s)}\n`);
    if (this.out !== undefined) await this.writeFiles(this.out, plans);
    else this.printPlans(plans);
    return 0;
  }

  private plansDir(): string | undefined {
    if (this.plans !== undefined) return this.plans;
    return existsSync(DEFAULT_PLANS_DIR) ? DEFAULT_PLANS_DIR : undefined;
  }

  /** One document at a time: thousands of CronJobs are tens of megabytes, never held as one string. */
  private printPlans(plans: BackupPlan[]): void {
    if (this.output === "json") {
      this.context.stdout.write(`${JSON.stringify(plans, null, 2)}\n`);
      return;
    }
    // Written in ~1 MiB chunks: a write per document costs a blocking pipe write each (stdout pipes are synchronous).
    let chunk: string[] = [];
    let size = 0;
    for (const document of compileYaml(plans)) {
      chunk.push(document);
      size += document.length;
      if (size >= WRITE_CHUNK) {
        this.context.stdout.write(chunk.join(DOCUMENT_SEPARATOR) + DOCUMENT_SEPARATOR);
        chunk = [];
        size = 0;
      }
    }
    if (chunk.length > 0) this.context.stdout.write(chunk.join(DOCUMENT_SEPARATOR));
  }

  /** `<cluster>.yaml` (or `.json`) per plan, including plans without targets, so the files mirror the clusters. */
  private async writeFiles(dir: string, plans: BackupPlan[]): Promise<void> {
    await mkdir(dir, { recursive: true });
    const extension = this.output === "json" ? "json" : "yaml";
    for (const plan of plans) {
      const file = join(dir, `${plan.metadata.cluster}.${extension}`);
      await writeFile(file, this.output === "json" ? `${JSON.stringify(plan, null, 2)}\n` : compile([plan]));
      this.context.stderr.write(`capsule: wrote ${file} (${plan.spec.targets.length} targets)\n`);
    }
  }
}
