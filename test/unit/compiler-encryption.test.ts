import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import yaml from "js-yaml";
import { generateX25519Identity, identityToRecipient } from "age-encryption";
import { compileManifests } from "../../src/compiler/compile.js";
import { LABELS } from "../../src/compiler/cronjob.js";
import { parsePlans } from "../../src/plan/load.js";
import { mergePlans } from "../../src/plan/merge.js";
import { PlanError } from "../../src/plan/plan-error.js";

function planYaml(encryption: unknown): string {
  return yaml.dump({
    apiVersion: "capsule.cnvrg.io/v1",
    kind: "BackupPlan",
    metadata: { cluster: "ns.app" },
    spec: {
      storage: { bucket: "backups", sse: { type: "aws:kms", kmsKeyId: "alias/backups" } },
      targets: [
        {
          name: "pg",
          engine: "postgresql",
          namespace: "ns",
          verify: { schedule: { period: "7d" } },
          encryption,
        },
      ],
    },
  });
}

describe("client-side encryption in plans and CronJobs", () => {
  let recipient: string;
  before(async () => {
    recipient = await identityToRecipient(await generateX25519Identity());
  });

  test("GIVEN a target with recipients and an identity Secret WHEN compiled THEN the backup CronJob carries only public keys and the drill alone gets the identity through a secretKeyRef", () => {
    const plans = mergePlans(
      [],
      parsePlans(
        planYaml({ recipients: [recipient], identitySecretRef: { secretName: "age-key", key: "identity" } }),
        "plans/enc.yaml",
      ),
    );
    const jobs = compileManifests(plans);
    const envOf = (verify: boolean) =>
      jobs.find((j) => (j.metadata.labels[LABELS.job] === "verify") === verify)!.spec.jobTemplate.spec!
        .template.spec!.containers[0]!.env!;
    const backup = envOf(false);
    const drill = envOf(true);
    assert.equal(
      backup.find((e) => e.name === "CAPSULE_AGE_IDENTITY"),
      undefined,
      "a backup needs no secret key",
    );
    assert.deepEqual(
      drill.find((e) => e.name === "CAPSULE_AGE_IDENTITY"),
      { name: "CAPSULE_AGE_IDENTITY", valueFrom: { secretKeyRef: { name: "age-key", key: "identity" } } },
    );
    for (const env of [backup, drill]) {
      const target = JSON.parse(env.find((e) => e.name === "CAPSULE_TARGET")!.value!) as {
        encryption: unknown;
        storage: { sse: unknown };
      };
      assert.deepEqual(target.encryption, { recipients: [recipient] });
      assert.deepEqual(target.storage.sse, { type: "aws:kms", kmsKeyId: "alias/backups" });
    }
  });

  test("GIVEN an encrypted target with a verify schedule but no identity Secret WHEN loaded THEN the missing field is named", () => {
    assert.throws(
      () => mergePlans([], parsePlans(planYaml({ recipients: [recipient] }), "plans/enc.yaml")),
      (error: unknown) =>
        error instanceof PlanError &&
        error.problems.some((p) =>
          p.startsWith(
            "plans/enc.yaml: /spec/targets/0/encryption/identitySecretRef is required with a verify schedule",
          ),
        ),
    );
  });

  test("GIVEN a recipient with a broken checksum or a secret key in its place WHEN loaded THEN the field is named", () => {
    const broken = recipient.slice(0, -1) + (recipient.endsWith("q") ? "p" : "q");
    for (const [value, expected] of [
      [broken, /plans\/enc\.yaml: \/spec\/targets\/0\/encryption\/recipients\/0 /],
      [
        "AGE-SECRET-KEY-1ABC",
        /plans\/enc\.yaml: \/spec\/targets\/0\/encryption\/recipients\/0 must match pattern/,
      ],
    ] as const) {
      assert.throws(
        () => mergePlans([], parsePlans(planYaml({ recipients: [value] }), "plans/enc.yaml")),
        (error: unknown) => error instanceof PlanError && error.problems.some((p) => expected.test(p)),
      );
    }
  });
});
