/**
 * A hand-written plan whose storage is a bucket on the harness' S3, written to a temporary folder for `capsule plan`
 * and `gatherPlans`. The S3 keys come from the Secret `backup-s3` (keys AK/SK): `planS3Secret` gives its values.
 */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TestServers } from "../harness/index.js";

/** Writes `plan.yaml` with the given targets (YAML list items, indented four spaces) and returns its folder. */
export async function writeHarnessPlan(
  servers: TestServers,
  plan: { cluster: string; bucket: string; targets: string },
): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "capsule-plan-"));
  await writeFile(
    path.join(dir, "plan.yaml"),
    `apiVersion: capsule.cnvrg.io/v1
kind: BackupPlan
metadata: { cluster: ${plan.cluster} }
spec:
  storage:
    bucket: ${plan.bucket}
    endpoint: ${servers.s3.endpoint}
    pathStyle: true
    credentialsSecretRef: { secretName: backup-s3, keys: { accessKeyId: AK, secretAccessKey: SK } }
  targets:
${plan.targets}`,
  );
  return dir;
}

/** The values of the plan's `backup-s3` Secret. */
export function planS3Secret(servers: TestServers): Record<string, string> {
  return { AK: servers.s3.accessKeyId, SK: servers.s3.secretAccessKey };
}
