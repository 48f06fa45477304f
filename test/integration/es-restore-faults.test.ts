/**
 * Issue 16 item 3 (Elasticsearch): a real `capsule es` child process, stopped by SIGINT or SIGTERM right after it
 * created an index on the target (failpoint es-restore-index-created), against the wire-level fake with real S3.
 * A restore must delete the index it had not finished, record the interruption and say what the target holds; a
 * drill into a verification cluster must delete its capsule-verify-* copies and record no verdict.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Statefile } from "../../src/domain/statefile.js";
import { createBucket, s3Env, testServers, uniqueName, type TestServers } from "../harness/index.js";
import { startCapsule } from "../support/capsule-process.js";
import { capsule } from "../support/cli.js";
import { esEnv, Fakes, type FakeElasticsearch } from "../support/es.js";

/** A capsule that never ends must fail its test, not hang the suite. */
const BOUNDED = { timeout: 120_000 };

describe("capsule es --restore and --verify under SIGINT and SIGTERM", () => {
  let servers: TestServers;
  let bucket: string;
  let source: FakeElasticsearch;
  let backupId: string;
  const cluster = "esfaults";
  const fakes = new Fakes();

  function env(fake: FakeElasticsearch): Record<string, string> {
    return { ...s3Env(servers.s3), CAPSULE_BUCKET: bucket, ...esEnv(fake) };
  }

  async function statefile(): Promise<Statefile> {
    const r = await capsule(
      ["es", "--describe", "--id", backupId, "--cluster", cluster, "-o", "json"],
      env(source),
    );
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Statefile;
  }

  async function indexNames(fake: FakeElasticsearch): Promise<string[]> {
    const rows = (await (await fetch(`${fake.url}/_cat/indices?format=json`)).json()) as Array<{
      index: string;
    }>;
    return rows.map((r) => r.index).sort();
  }

  before(async () => {
    servers = await testServers();
    bucket = `s3://${uniqueName("esfaults")}/capsule`;
    await createBucket(servers.s3, new URL(bucket).host);
    source = await fakes.start("8", { refreshIntervalMs: 0 });
    for (const name of ["alpha", "beta"]) {
      source.seed(
        name,
        { mappings: { properties: { n: { type: "long" } } } },
        Array.from({ length: 50 }, (_, n) => ({ id: String(n), source: { n } })),
      );
    }
    const r = await capsule(["es", "--create", "--cluster", cluster], env(source));
    assert.equal(r.code, 0, r.stderr);
    backupId = r.stdout.trim();
  });

  after(async () => {
    await fakes.closeAll();
  });

  test(
    "GIVEN a restore that has created its first index WHEN capsule gets SIGINT THEN the unfinished index is deleted, the target's own index is untouched, capsule exits 130 saying so and restores[] records the interruption",
    BOUNDED,
    async () => {
      const target = await fakes.start("8", { refreshIntervalMs: 0 });
      target.seed("own", {}, [{ id: "1", source: { n: 1 } }]);
      const child = startCapsule(
        ["es", "--restore", "--yes", "--id", backupId, "--cluster", cluster],
        env(target),
        { failpoints: ["es-restore-index-created"] },
      );
      await child.waitForStderr(/failpoint es-restore-index-created reached/);
      assert.deepEqual(await indexNames(target), ["alpha", "own"]);
      child.signal("SIGINT");
      const exit = await child.exited;
      assert.equal(exit.code, 130, child.stderr());
      assert.match(
        child.stderr().trim().split("\n").at(-1)!,
        /^capsule: CAPSULE_INTERRUPTED: interrupted by SIGINT: .*no index was restored completely; the unfinished alpha was deleted$/,
      );
      assert.deepEqual(await indexNames(target), ["own"]);
      const restores = (await statefile()).restores;
      assert.equal(restores.at(-1)?.result, "interrupted");
    },
  );

  test(
    "GIVEN a drill into a verification cluster WHEN capsule gets SIGTERM mid-restore THEN its capsule-verify-* copies are deleted, capsule exits 143 and no verification is recorded",
    BOUNDED,
    async () => {
      const verifier = await fakes.start("8", { refreshIntervalMs: 0 });
      verifier.seed("alpha", {}, [{ id: "mine", source: { n: 42 } }]);
      const child = startCapsule(
        ["es", "--verify", "--id", backupId, "--cluster", cluster, "--verify-url", verifier.url],
        env(source),
        { failpoints: ["es-restore-index-created"] },
      );
      await child.waitForStderr(/failpoint es-restore-index-created reached/);
      assert.equal((await indexNames(verifier)).filter((n) => n.startsWith("capsule-verify-")).length, 1);
      child.signal("SIGTERM");
      const exit = await child.exited;
      assert.equal(exit.code, 143, child.stderr());
      assert.match(
        child.stderr().trim().split("\n").at(-1)!,
        /^capsule: CAPSULE_INTERRUPTED: interrupted by SIGTERM: the restore drill stopped; its capsule-verify-\d+-\* indices are deleted/,
      );
      assert.deepEqual(await indexNames(verifier), ["alpha"]);
      assert.equal(verifier.index("alpha")?.docs.size, 1);
      assert.deepEqual((await statefile()).verification, { status: "unverified" });
    },
  );
});
