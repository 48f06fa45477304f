import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import yaml from "js-yaml";
import { containerEnv } from "../../src/compiler/env.js";
import { ENGINES } from "../../src/domain/backup.js";
import { allProfiles, profileOf } from "../../src/engines/registry.js";
import { parsePlans } from "../../src/plan/load.js";
import { mergePlans } from "../../src/plan/merge.js";
import { PlanError } from "../../src/plan/plan-error.js";

function planText(target: Record<string, unknown>): string {
  return yaml.dump({
    apiVersion: "capsule.cnvrg.io/v1",
    kind: "BackupPlan",
    metadata: { cluster: "ns.app" },
    spec: { storage: { bucket: "backups" }, targets: [{ name: "t", namespace: "ns", ...target }] },
  });
}

/** `import … from "x";`, `export … from "x";` and `import "x";`, at the start of a line. */
const IMPORT = /^(?:import|export)\b(?! type\b)[^;"]*?(?:\sfrom\s+)?"([^"]+)";/gm;

describe("engine profiles", () => {
  test("GIVEN every engine name WHEN its profile is looked up THEN it names that engine, in ENGINES order", () => {
    for (const name of ENGINES) assert.equal(profileOf(name).name, name);
    assert.deepEqual(
      allProfiles().map((p) => p.name),
      [...ENGINES],
    );
  });

  test("GIVEN the profiles WHEN compared THEN each has its own CnvrgApp block", () => {
    const keys = allProfiles().map((p) => p.cnvrgKey);
    assert.equal(new Set(keys).size, keys.length);
  });

  test("GIVEN a profile's pod environment WHEN it reads the credentials Secret THEN the role has a default key", () => {
    for (const p of allProfiles()) {
      for (const v of p.podEnv) {
        const role = "secret" in v ? v.secret : "orSecret" in v ? v.orSecret : undefined;
        if (role !== undefined) assert.ok(p.credentialKeys[role], `${p.name} ${v.name} reads role ${role}`);
      }
    }
  });

  // `capsule plan` loads the registry's profiles at start-up; the engines' runtime code (clients, tools) must not
  // come along. Type-only imports are erased, and an engine's code is loaded by the registry's `load` on demand.
  test("GIVEN registry.ts WHEN its imports are followed THEN they reach only profile files and domain/", () => {
    const src = new URL("../../src/", import.meta.url);
    const pending = [new URL("engines/registry.ts", src)];
    const seen = new Set<string>();
    for (let url = pending.pop(); url; url = pending.pop()) {
      const path = url.href.slice(src.href.length);
      if (seen.has(path)) continue;
      seen.add(path);
      assert.match(
        path,
        /^(domain\/|engines\/((\w+\/)?profile|registry)\.ts$)/,
        `registry.ts reaches ${path}`,
      );
      if (path.startsWith("domain/")) continue;
      for (const [, from] of readFileSync(url, "utf8").matchAll(IMPORT)) {
        assert.ok(from!.startsWith("."), `${path} imports the package ${from}`);
        pending.push(new URL(from!.replace(/\.js$/, ".ts"), url));
      }
    }
    assert.ok(seen.size > ENGINES.length + 1, [...seen].join(" "));
  });
});

describe("what the profiles decide in a plan", () => {
  test("GIVEN a postgresql target without host and database WHEN compiled THEN both come from the credentials Secret", () => {
    const [plan] = mergePlans([], parsePlans(planText({ engine: "postgresql" }), "p.yaml"));
    const env = containerEnv(plan!, plan!.spec.targets[0]!);
    const byName = Object.fromEntries(env.map((e) => [e.name, e]));
    assert.deepEqual(byName["PGHOST"], {
      name: "PGHOST",
      valueFrom: { secretKeyRef: { name: "pg-creds", key: "POSTGRES_HOST" } },
    });
    assert.deepEqual(byName["PGDATABASE"], {
      name: "PGDATABASE",
      valueFrom: { secretKeyRef: { name: "pg-creds", key: "POSTGRES_DB" } },
    });
  });

  test("GIVEN an elasticsearch target with only a url WHEN compiled THEN ES_URL is the url", () => {
    const text = planText({ engine: "elasticsearch", connection: { url: "https://es.example:9243" } });
    const [plan] = mergePlans([], parsePlans(text, "p.yaml"));
    const env = containerEnv(plan!, plan!.spec.targets[0]!);
    assert.deepEqual(
      env.find((e) => e.name === "ES_URL"),
      { name: "ES_URL", value: "https://es.example:9243" },
    );
  });

  test("GIVEN a url on a redis target WHEN the plan is loaded THEN it is refused as elasticsearch's field", () => {
    const text = planText({ engine: "redis", connection: { url: "http://redis:6379" } });
    assert.throws(
      () => mergePlans([], parsePlans(text, "p.yaml")),
      (error: unknown) =>
        error instanceof PlanError &&
        error.problems.join("\n") ===
          'p.yaml: /spec/targets/0/connection/url is only for elasticsearch, not redis (got "http://redis:6379")',
    );
  });
});
