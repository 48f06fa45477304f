/**
 * Reading hand-written plans: `plans/*.yaml` (several documents per file allowed;
 * `.json` files and JSON arrays of plans too), each validated against the
 * schema. Every problem in every file is collected and thrown as one `PlanError`, lines reading
 * `plans/ml.yaml: /spec/targets/0/retention/keepLast must be >= 1 (got 0)`; a file with several documents names
 * the document: `plans/ml.yaml#2: …`.
 */
import { readFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import yaml from "js-yaml";
import { CapsuleError, ErrorCode } from "../domain/errors.js";
import { formatAjvErrors } from "../util/ajv.js";
import type { SourcedPlanDocument } from "./document.js";
import { PlanError } from "./plan-error.js";
import { planValidator } from "./schema.js";

/** JSON is YAML too: `capsule plan -o json` output can be saved as a plan file. */
const PLAN_FILE = /\.(ya?ml|json)$/;

/** Validated plan documents from YAML text; pure. */
export function parsePlans(text: string, file: string): SourcedPlanDocument[] {
  let documents: unknown[];
  try {
    // An array document is a list of plans (what `capsule plan -o json` prints).
    documents = yaml.loadAll(text).flatMap((d) => (Array.isArray(d) ? (d as unknown[]) : [d]));
    documents = documents.filter((d) => d !== null && d !== undefined);
  } catch (error) {
    throw new PlanError([`${file}: invalid YAML: ${(error as Error).message.split("\n")[0]}`]);
  }
  const validate = planValidator();
  const problems: string[] = [];
  const plans: SourcedPlanDocument[] = [];
  documents.forEach((document, i) => {
    const source = documents.length > 1 ? `${file}#${i + 1}` : file;
    if (validate(document)) plans.push({ source, document });
    else problems.push(...formatAjvErrors(source, validate.errors, document));
  });
  if (problems.length > 0) throw new PlanError(problems);
  return plans;
}

/** Plans from a directory's `*.yaml`/`*.yml`/`*.json` (not recursive, in name order) or from one file. */
export async function loadPlans(path: string): Promise<SourcedPlanDocument[]> {
  const info = await stat(path).catch(() => undefined);
  if (!info) throw new CapsuleError(ErrorCode.Config, `${path}: no such file or directory`);
  const files = info.isDirectory()
    ? (await readdir(path))
        .filter((f) => PLAN_FILE.test(f))
        .sort()
        .map((f) => join(path, f))
    : [path];
  const plans: SourcedPlanDocument[] = [];
  const problems: string[] = [];
  for (const file of files) {
    try {
      plans.push(...parsePlans(await readFile(file, "utf8"), file));
    } catch (error) {
      if (!(error instanceof PlanError)) throw error;
      problems.push(...error.problems);
    }
  }
  if (problems.length > 0) throw new PlanError(problems);
  return plans;
}
