/** `capsule install --dry-run`: the daemon's manifests — valid, byte-stable, least-privilege, and the committed file. */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, test } from "node:test";
import type { V1Deployment } from "@kubernetes/client-node";
import yaml from "js-yaml";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ClusterRole } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole";
import { ClusterRoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding";
import { Role } from "kubernetes-models/rbac.authorization.k8s.io/v1/Role";
import { RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { renderInstall } from "../../src/install/manifests.js";
import { capsule } from "../support/cli.js";

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}
interface Doc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  rules?: Rule[];
  spec?: Record<string, unknown>;
}

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  Namespace,
  ServiceAccount,
  ClusterRole,
  ClusterRoleBinding,
  Role,
  RoleBinding,
  Deployment,
  Service,
  PodDisruptionBudget,
};

const docs = (text: string) => yaml.loadAll(text) as Doc[];

async function install(args: string[] = []) {
  return capsule(["install", "--dry-run", ...args]);
}

describe("capsule install", () => {
  test("GIVEN no flags WHEN --dry-run THEN it prints the daemon's objects in apply order, each valid for Kubernetes", async () => {
    const { code, stdout, stderr } = await install();
    assert.equal(code, 0, stderr);
    const objects = docs(stdout);
    assert.deepEqual(
      objects.map((d) => `${d.kind}/${d.metadata.name}`),
      [
        "Namespace/capsule-system",
        "ServiceAccount/capsule",
        "ClusterRole/capsule",
        "ClusterRoleBinding/capsule",
        "Role/capsule-leader-election",
        "RoleBinding/capsule-leader-election",
        "Deployment/capsule",
        "Service/capsule",
        "PodDisruptionBudget/capsule",
      ],
    );
    for (const object of objects) {
      const Model = MODELS[object.kind];
      assert.ok(Model, `no model for ${object.kind}`);
      assert.doesNotThrow(() => new Model(object as never).validate(), `${object.kind} validates`);
    }
  });

  test("GIVEN every flag WHEN rendered THEN each object still validates", async () => {
    const { code, stdout, stderr } = await install([
      "--namespace=backup",
      "--image=registry.local/capsule@sha256:" + "a".repeat(64),
      "--replicas=1",
      "--bucket=s3://my-bucket/capsule",
      "--watch-namespace=cnvrg",
      "--secret=pg-creds",
    ]);
    assert.equal(code, 0, stderr);
    for (const object of docs(stdout)) new MODELS[object.kind]!(object as never).validate();
  });

  test("GIVEN the same flags WHEN rendered twice THEN the bytes are identical", async () => {
    const args = ["--watch-namespace", "cnvrg", "--replicas", "3"];
    const a = await install(args);
    const b = await install(args);
    assert.equal(a.stdout, b.stdout);
    assert.equal((await install()).stdout, renderInstall());
  });

  test("GIVEN the committed deploy/capsule.yaml WHEN compared THEN it is the default rendering", async () => {
    assert.equal(await readFile("deploy/capsule.yaml", "utf8"), renderInstall());
  });

  test("GIVEN the RBAC WHEN inspected THEN no wildcard, only cnvrg's bucket Secret by name, only the leader Lease", () => {
    const rules = docs(renderInstall()).flatMap((d) => d.rules ?? []);
    assert.ok(rules.length > 0);
    for (const rule of rules) {
      for (const field of [rule.apiGroups, rule.resources, rule.verbs, rule.resourceNames ?? []])
        assert.ok(!field.includes("*"), `wildcard in ${JSON.stringify(rule)}`);
      if (rule.resources.includes("secrets"))
        assert.deepEqual(rule.resourceNames, ["cp-object-storage"], "Secrets only by name, never listed");
      for (const verb of ["escalate", "bind", "impersonate"]) assert.ok(!rule.verbs.includes(verb));
    }
    const verbsOf = (resource: string) =>
      rules.filter((r) => r.resources.includes(resource)).flatMap((r) => r.verbs);
    assert.deepEqual(verbsOf("cnvrgapps"), ["list", "watch"]);
    assert.deepEqual(verbsOf("secrets"), ["get"]);
    assert.deepEqual(verbsOf("events"), ["create"]);
    assert.deepEqual(verbsOf("leases").sort(), ["create", "get", "update"]);
    const leaseUpdate = rules.find((r) => r.resources.includes("leases") && r.verbs.includes("update"));
    assert.deepEqual(leaseUpdate?.resourceNames, ["capsule-leader"]);
  });

  test("GIVEN --secret WHEN rendered THEN those Secret names may be read too, and no other", async () => {
    const { stdout } = await install(["--secret", "b-creds", "--secret", "a-creds"]);
    const secretRules = docs(stdout)
      .flatMap((d) => d.rules ?? [])
      .filter((r) => r.resources.includes("secrets"));
    assert.deepEqual(secretRules, [
      {
        apiGroups: [""],
        resources: ["secrets"],
        resourceNames: ["a-creds", "b-creds", "cp-object-storage"],
        verbs: ["get"],
      },
    ]);
  });

  test("GIVEN --watch-namespace WHEN rendered THEN no cluster-scoped RBAC: a Role in that namespace, the daemon limited to it", async () => {
    const { code, stdout } = await install(["--watch-namespace", "cnvrg", "--namespace", "backup"]);
    assert.equal(code, 0);
    const objects = docs(stdout);
    assert.ok(!objects.some((d) => d.kind.startsWith("Cluster")));
    const role = objects.find((d) => d.kind === "Role" && d.metadata.name === "capsule");
    const binding = objects.find((d) => d.kind === "RoleBinding" && d.metadata.name === "capsule");
    assert.equal(role?.metadata.namespace, "cnvrg");
    assert.equal(binding?.metadata.namespace, "cnvrg");
    assert.deepEqual((binding as unknown as { subjects: unknown }).subjects, [
      { kind: "ServiceAccount", name: "capsule", namespace: "backup" },
    ]);
    const lease = objects.find((d) => d.metadata.name === "capsule-leader-election" && d.kind === "Role");
    assert.equal(lease?.metadata.namespace, "backup");
    const deployment = objects.find((d) => d.kind === "Deployment") as unknown as {
      spec: { template: { spec: { containers: { args: string[] }[] } } };
    };
    assert.ok(deployment.spec.template.spec.containers[0]!.args.includes("--namespace=cnvrg"));
  });

  test("GIVEN the Deployment WHEN inspected THEN replicas, probes and a hardened pod", async () => {
    const { stdout } = await install(["--replicas", "3", "--image", "x/capsule:1", "--bucket", "s3://b-1/p"]);
    const deployment = docs(stdout).find((d) => d.kind === "Deployment") as unknown as V1Deployment;
    assert.equal(deployment.spec?.replicas, 3);
    const pod = deployment.spec?.template.spec;
    assert.ok(pod);
    assert.equal(pod.securityContext?.runAsNonRoot, true);
    assert.deepEqual(pod.securityContext?.seccompProfile, { type: "RuntimeDefault" });
    const container = pod.containers[0]!;
    assert.equal(container.image, "x/capsule:1");
    assert.equal(container.env?.find((e) => e.name === "CAPSULE_BUCKET")?.value, "s3://b-1/p");
    assert.equal(container.livenessProbe?.httpGet?.path, "/healthz");
    assert.equal(container.readinessProbe?.httpGet?.path, "/readyz");
    assert.ok(container.resources?.requests && container.resources.limits);
    assert.deepEqual(container.securityContext, {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
    });
    assert.deepEqual(container.volumeMounts, [{ mountPath: "/tmp", name: "tmp" }]);
    assert.deepEqual(pod.volumes, [{ emptyDir: { sizeLimit: "64Mi" }, name: "tmp" }]);
  });

  test("GIVEN one replica WHEN rendered THEN the PodDisruptionBudget does not block drains", async () => {
    const one = docs((await install(["--replicas", "1"])).stdout).find(
      (d) => d.kind === "PodDisruptionBudget",
    );
    const two = docs((await install()).stdout).find((d) => d.kind === "PodDisruptionBudget");
    assert.equal(one?.spec?.["maxUnavailable"], 1);
    assert.equal(two?.spec?.["minAvailable"], 1);
  });

  for (const [args, message] of [
    [
      [],
      /^capsule: CAPSULE_USAGE: capsule does not apply its own install: run `capsule install --dry-run \| kubectl apply -f -`/,
    ],
    [
      ["--dry-run", "--replicas", "two"],
      /^capsule: CAPSULE_USAGE: --replicas must be a whole number \(got "two"\)/,
    ],
    [
      ["--dry-run", "--replicas", "0"],
      /^capsule: CAPSULE_USAGE: --replicas must be an integer from 1 to 10 \(got 0\)/,
    ],
    [
      ["--dry-run", "--namespace", "Capsule_NS"],
      /^capsule: CAPSULE_USAGE: --namespace must be a DNS label .*\(got "Capsule_NS"\)/,
    ],
    [
      ["--dry-run", "--bucket", "/tmp/x"],
      /^capsule: CAPSULE_USAGE: --bucket must be s3:\/\/bucket\[\/prefix\] \(got "\/tmp\/x"\)/,
    ],
    [
      ["--dry-run", "--watch-namespace=bad_ns"],
      /^capsule: CAPSULE_USAGE: --watch-namespace must be a DNS label .*\(got "bad_ns"\)/,
    ],
    [
      ["--dry-run", "--image", "a b"],
      /^capsule: CAPSULE_USAGE: --image must be an image reference \(got "a b"\)/,
    ],
    [
      ["--dry-run", "--secret", "Bad/Name"],
      /^capsule: CAPSULE_USAGE: --secret must be a Secret name \(got "Bad\/Name"\)/,
    ],
  ] as const) {
    test(`GIVEN install ${args.join(" ") || "(no --dry-run)"} WHEN run THEN a one-line usage error, exit 2 and nothing on stdout`, async () => {
      const { code, stdout, stderr } = await capsule(["install", ...args]);
      assert.equal(code, 2);
      assert.equal(stdout, "");
      assert.match(stderr, message);
      assert.equal(stderr.trimEnd().split("\n").length, 1, stderr);
    });
  }
});
