import { once } from "node:events";
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
/**
 * Documents are written in batches of about this many characters. Small on purpose: a batch is held until written,
 * and at 1 MiB the batches lived long enough to be promoted and grew the heap (6,000 CronJobs: 240 MB peak RSS,
 * 125 MB at 16 KiB, as fast).
 */
const WRITE_CHUNK = 1 << 14;

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
    else await this.printPlans(plans);
    return 0;
  }

  private plansDir(): string | undefined {
    if (this.plans !== undefined) return this.plans;
    return existsSync(DEFAULT_PLANS_DIR) ? DEFAULT_PLANS_DIR : undefined;
  }

  /**
   * One document at a time: thousands of CronJobs are tens of megabytes, never held as one string. Each write waits
   * for the reader when stdout asks it to: a pipe read slower than the compiler writes (a `| kubectl apply`, a parent
   * process) would otherwise queue the whole output in memory (6,000 CronJobs: +60 MB peak RSS).
   */
  private async printPlans(plans: BackupPlan[]): Promise<void> {
    if (this.output === "json") {
      await this.write(`${JSON.stringify(plans, null, 2)}\n`);
      return;
    }
    // Batched: a write per document would cost a pipe write each. A batch begins with the separator from the one
    // before it, so the output never ends in one (an empty last document).
    let batch = "";
    let written = false;
    for (const document of compileYaml(plans)) {
      batch += batch === "" ? document : DOCUMENT_SEPARATOR + document;
      if (batch.length >= WRITE_CHUNK) {
        await this.write(written ? DOCUMENT_SEPARATOR + batch : batch);
        written = true;
        batch = "";
      }
    }
    if (batch !== "") await this.write(written ? DOCUMENT_SEPARATOR + batch : batch);
  }

  private async write(text: string): Promise<void> {
    if (!this.context.stdout.write(text)) await once(this.context.stdout, "drain");
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
