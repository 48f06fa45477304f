import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import yaml from "js-yaml";
import { capsule } from "../support/cli.js";

const FIXTURES = "fixtures/cnvrgapps";
const apps = yaml.loadAll(
  `${await readFile(`${FIXTURES}/full.yaml`, "utf8")}\n---\n${await readFile(`${FIXTURES}/pg-only-defaults.yaml`, "utf8")}`,
);
const emptyDir = await mkdtemp(join(tmpdir(), "capsule-noplans-"));
const kinds = (stdout: string) => yaml.loadAll(stdout).map((d) => (d as { kind: string }).kind);
const names = (stdout: string) =>
  yaml.loadAll(stdout).map((d) => (d as { metadata: { name: string } }).metadata.name);

describe("capsule plan", () => {
  const noPlans = emptyDir;

  test("GIVEN the fixture folder WHEN `plan --dry-run --from-files` runs THEN it prints the CronJobs and one stderr line per skip", async () => {
    const { code, stdout, stderr } = await capsule([
      "plan",
      "--dry-run",
      "--from-files",
      FIXTURES,
      "--plans",
      noPlans,
    ]);
    assert.equal(code, 0, stderr);
    assert.deepEqual(kinds(stdout), ["CronJob", "CronJob", "CronJob", "CronJob"]);
    assert.deepEqual(names(stdout), [
      "capsule-cnvrg-team-a-team-a-postgresql",
      "capsule-cnvrg-cnvrg-app-elasticsearch",
      "capsule-cnvrg-cnvrg-app-postgresql",
      "capsule-cnvrg-cnvrg-app-redis",
    ]);
    const lines = stderr.trimEnd().split("\n");
    assert.equal(lines.length, 2);
    assert.match(
      lines[1]!,
      /^capsule: skipped target postgresql of CnvrgApp cnvrg-broken\/broken: spec\.dbs\.pg\.backup\.period .* \(got "every day"\)$/,
    );
  });

  test("GIVEN several paths after --from-files WHEN run THEN all are read", async () => {
    const { code, stdout } = await capsule([
      "plan",
      "--dry-run",
      "--plans",
      noPlans,
      "--from-files",
      `${FIXTURES}/full.yaml`,
      `${FIXTURES}/pg-only-defaults.yaml`,
    ]);
    assert.equal(code, 0);
    assert.equal(kinds(stdout).length, 4);
  });

  test("GIVEN only the shipped plans folder WHEN `plan --dry-run --plans plans` runs THEN the example compiles with no cluster", async () => {
    const { code, stdout, stderr } = await capsule(["plan", "--dry-run", "--plans", "plans"]);
    assert.equal(code, 0, stderr);
    assert.deepEqual(names(stdout), [
      "capsule-example-ml-platform-postgres",
      "capsule-example-ml-platform-postgres-verify",
      "capsule-example-ml-platform-redis",
      "capsule-example-ml-platform-search",
    ]);
  });

  test("GIVEN -o json WHEN run THEN the resolved plans are printed", async () => {
    const { code, stdout } = await capsule([
      "plan",
      "--dry-run",
      "--from-files",
      `${FIXTURES}/full.yaml`,
      "--plans",
      noPlans,
      "-o",
      "json",
    ]);
    assert.equal(code, 0);
    const plans = JSON.parse(stdout) as Array<{ kind: string; metadata: { cluster: string } }>;
    assert.deepEqual(
      plans.map((p) => [p.kind, p.metadata.cluster]),
      [["BackupPlan", "cnvrg.cnvrg-app"]],
    );
  });

  test("GIVEN --out DIR WHEN run THEN one file per cluster is written", async () => {
    const out = await mkdtemp(join(tmpdir(), "capsule-out-"));
    const { code, stdout } = await capsule([
      "plan",
      "--from-files",
      FIXTURES,
      "--plans",
      "plans",
      "--out",
      out,
    ]);
    assert.equal(code, 0);
    assert.equal(stdout, "");
    assert.deepEqual((await readdir(out)).sort(), [
      "cnvrg-broken.broken.yaml",
      "cnvrg-sandbox.sandbox.yaml",
      "cnvrg-team-a.team-a.yaml",
      "cnvrg.cnvrg-app.yaml",
      "example.ml-platform.yaml",
    ]);
    assert.equal(kinds(await readFile(join(out, "cnvrg.cnvrg-app.yaml"), "utf8")).length, 3);
  });

  test("GIVEN neither --dry-run nor --out WHEN run THEN it refuses with a usage error", async () => {
    const { code, stdout, stderr } = await capsule(["plan", "--plans", "plans"]);
    assert.equal(code, 2);
    assert.equal(stdout, "", "errors never go where scripts read results");
    assert.match(stderr, /use --dry-run to print, or --out DIR to write files/);
  });

  test("GIVEN an invalid plan WHEN run THEN exit 1 with the documented message and nothing on stdout", async () => {
    const dir = await mkdtemp(join(tmpdir(), "capsule-bad-"));
    const bad = {
      apiVersion: "capsule.cnvrg.io/v1",
      kind: "BackupPlan",
      metadata: { cluster: "x" },
      spec: {
        storage: { bucket: "bkt" },
        targets: [{ name: "pg", engine: "postgresql", namespace: "ns", retention: { keepLast: 0 } }],
      },
    };
    await writeFile(join(dir, "ml.yaml"), yaml.dump(bad));
    const { code, stdout, stderr } = await capsule(["plan", "--dry-run", "--plans", dir]);
    assert.equal(code, 1);
    assert.equal(stdout, "");
    assert.equal(
      stderr,
      `capsule: CAPSULE_CONFIG: ${join(dir, "ml.yaml")}: /spec/targets/0/retention/keepLast must be >= 1 (got 0)\n`,
    );
  });

  test("GIVEN a path that does not exist WHEN run THEN one line names it", async () => {
    const { code, stderr } = await capsule([
      "plan",
      "--dry-run",
      "--plans",
      noPlans,
      "--from-files",
      "nope/",
    ]);
    assert.equal(code, 1);
    assert.equal(stderr, "capsule: CAPSULE_CONFIG: nope/: no such file or directory\n");
  });
});

/** A wire-level fake of the one API call the adapter makes: list CnvrgApps, paged, all namespaces or one. */
describe("capsule plan --from-cluster (fake API server)", () => {
  let server: Server;
  let kubeconfig: string;
  const requests: string[] = [];

  before(async () => {
    server = createServer((req, res) => {
      requests.push(req.url ?? "");
      const url = new URL(req.url ?? "/", "http://fake");
      res.setHeader("content-type", "application/json");
      if (url.pathname === "/apis/mlops.cnvrg.io/v1/cnvrgapps") {
        const second = url.searchParams.get("continue") === "page2";
        const body = {
          apiVersion: "mlops.cnvrg.io/v1",
          kind: "CnvrgAppList",
          metadata: second ? {} : { continue: "page2" },
          items: [apps[second ? 1 : 0]],
        };
        res.end(JSON.stringify(body));
      } else if (url.pathname === "/apis/mlops.cnvrg.io/v1/namespaces/cnvrg/cnvrgapps") {
        res.end(JSON.stringify({ kind: "CnvrgAppList", metadata: {}, items: [apps[0]] }));
      } else {
        res.statusCode = 403;
        res.end(
          JSON.stringify({
            kind: "Status",
            apiVersion: "v1",
            status: "Failure",
            reason: "Forbidden",
            code: 403,
            message: "forbidden",
          }),
        );
      }
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const dir = await mkdtemp(join(tmpdir(), "capsule-kube-"));
    kubeconfig = join(dir, "config");
    await writeFile(
      kubeconfig,
      yaml.dump({
        apiVersion: "v1",
        kind: "Config",
        "current-context": "fake",
        clusters: [
          { name: "fake", cluster: { server: `http://127.0.0.1:${port}`, "insecure-skip-tls-verify": true } },
        ],
        users: [{ name: "fake", user: { token: "t" } }],
        contexts: [{ name: "fake", context: { cluster: "fake", user: "fake" } }],
      }),
    );
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  async function withKubeconfig<T>(run: () => Promise<T>): Promise<T> {
    const saved = process.env["KUBECONFIG"];
    process.env["KUBECONFIG"] = kubeconfig; // read by the client's loadFromDefault
    try {
      return await run();
    } finally {
      if (saved === undefined) delete process.env["KUBECONFIG"];
      else process.env["KUBECONFIG"] = saved;
    }
  }

  test("GIVEN two pages of CnvrgApps in the kube context WHEN `plan --dry-run --from-cluster` runs THEN both pages are planned", async () => {
    const { code, stdout, stderr } = await withKubeconfig(() =>
      capsule(["plan", "--dry-run", "--from-cluster", "--plans", "plans"]),
    );
    assert.equal(code, 0, stderr);
    // 4 scanned targets, 3 example targets, and the example's postgres restore drill.
    assert.equal(kinds(stdout).length, 4 + 3 + 1);
    assert.ok(requests.some((r) => r.includes("continue=page2")));
  });

  test("GIVEN --namespace WHEN run THEN only that namespace is listed", async () => {
    const { code, stdout } = await withKubeconfig(() =>
      capsule(["plan", "--dry-run", "--from-cluster", "-n", "cnvrg", "--plans", emptyDir]),
    );
    assert.equal(code, 0);
    assert.equal(kinds(stdout).length, 3);
  });

  test("GIVEN a namespace the user may not list WHEN run THEN one line says so", async () => {
    const { code, stderr } = await withKubeconfig(() =>
      capsule(["plan", "--dry-run", "--from-cluster", "-n", "secret", "--plans", emptyDir]),
    );
    assert.equal(code, 1);
    assert.equal(
      stderr,
      "capsule: CAPSULE_CONFIG: cannot list CnvrgApps (fake namespace secret): HTTP 403\n",
    );
  });
});
