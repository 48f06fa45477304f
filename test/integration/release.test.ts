/**
 * The release binary (`npm run release`, docs/adr/0008) as an operator runs it: built into a temporary directory,
 * copied alone into an empty one, run with a PATH that holds no node and no node_modules anywhere near it — against
 * the harness' real PostgreSQL and S3 (radosgw).
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { accessSync, constants, copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { buildRelease, releaseName, type Release } from "../../scripts/release/build-release.js";
import { bundleCli } from "../../scripts/release/bundle.js";
import { seaBlob } from "../../scripts/release/sea.js";
import { computeBuildStamp } from "../../scripts/release/stamp.js";
import {
  createBucket,
  requireBinary,
  s3Env,
  testServers,
  uniqueName,
  type TestServers,
} from "../harness/index.js";
import { openBackupStore } from "../../src/runtime/bucket.js";
import { layout } from "../../src/storage/layout.js";
import { serializeStatefile } from "../../src/storage/statefile.js";
import { cnvrgApp, cnvrgStorageSecret } from "../fakes/cnvrgapps.js";
import { FakeKubeApiServer } from "../fakes/kube-apiserver.js";
import { capsule } from "../support/cli.js";
import { statefile } from "../support/entries.js";
import { pgEnv, sql } from "../support/pg.js";
import { objectsOf, prefixOf } from "../support/raw-bucket.js";

const exec = promisify(execFile);
const root = path.resolve(import.meta.dirname, "..", "..");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Every directory on `PATH` that holds an executable `name`. */
function onPath(name: string, searchPath: string): string[] {
  return searchPath.split(path.delimiter).filter((dir) => {
    try {
      accessSync(path.join(dir, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

describe("the release binary", () => {
  let servers: TestServers;
  let release: Release;
  const scratch: string[] = [];
  let binary: string;
  let home: string;
  /** The PostgreSQL client tools and zstd, and nothing else: no node. */
  let toolsPath: string;
  /** zstd alone: capsule must say that pg_dump is missing. */
  let noPgPath: string;

  const tempDir = (prefix: string) => {
    const dir = mkdtempSync(path.join(tmpdir(), prefix));
    scratch.push(dir);
    return dir;
  };

  before(async () => {
    servers = await testServers();
    release = await buildRelease({ root, outDir: tempDir("capsule-release-out-") });
    home = tempDir("capsule-release-home-");
    binary = path.join(home, "capsule");
    copyFileSync(release.binary, binary);
    const tools = tempDir("capsule-release-tools-");
    symlinkSync(requireBinary("zstd", "zstd"), path.join(tools, "zstd"));
    toolsPath = [servers.pg.binDir, tools].join(path.delimiter);
    noPgPath = tools;
    assert.deepEqual(onPath("node", toolsPath), [], "the test PATH must not hold node");
    assert.notDeepEqual(onPath("pg_dump", toolsPath), [], "the test PATH must hold pg_dump");
  });
  after(() => {
    for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs the copied binary in its empty directory with only `env` (and the node-free PATH). */
  async function run(args: string[], env: Record<string, string> = {}): Promise<Run> {
    try {
      const { stdout, stderr } = await exec(binary, args, {
        cwd: home,
        env: { PATH: toolsPath, HOME: home, ...env },
      });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code?: number; stdout?: string; stderr?: string };
      if (typeof e.code !== "number") throw error;
      return { code: e.code, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
    }
  }

  test("GIVEN npm run release WHEN built THEN one executable named for version and platform, and a sha256 file sha256sum accepts", async () => {
    assert.equal(path.basename(release.binary), releaseName(release.stamp.version));
    assert.match(path.basename(release.binary), /^capsule-\d+\.\d+\.\d+-linux-x86_64$/);
    const { stdout } = await exec("sha256sum", ["-c", path.basename(release.checksumFile)], {
      cwd: path.dirname(release.binary),
    });
    assert.equal(stdout.trim(), `${path.basename(release.binary)}: OK`);
  });

  test("GIVEN SOURCE_DATE_EPOCH WHEN the script is bundled and made into a blob twice, in different directories, THEN the bytes are identical", async () => {
    const stamp = computeBuildStamp(root, { SOURCE_DATE_EPOCH: "1764000000" });
    const blobs = [];
    for (const prefix of ["capsule-repro-a-", "capsule-repro-b-"]) {
      const workDir = tempDir(prefix);
      const script = path.join(workDir, "capsule.cjs");
      await bundleCli(root, stamp, script);
      blobs.push(readFileSync(seaBlob({ script, workDir, codeCache: false })));
    }
    assert.ok(blobs[0]!.equals(blobs[1]!), "the two blobs differ");
    assert.ok(blobs[0]!.includes(`"2025-11-24T16:00:00Z"`), "the stamp is in the blob");
  });

  test("GIVEN the binary alone WHEN capsule version THEN the stamped version, commit and build date, as text and -o json", async () => {
    const text = await run(["version"]);
    assert.equal(text.code, 0, text.stderr);
    const { version, commit, date } = release.stamp;
    assert.equal(
      text.stdout,
      `capsule ${version} (commit ${commit}, built ${date}, node ${process.version})\n`,
    );
    assert.equal(text.stderr, "", "no experimental-feature warning on stderr");
    assert.notEqual(commit, "dev");
    const json = await run(["version", "-o", "json"]);
    assert.deepEqual(JSON.parse(json.stdout), { version, commit, date, node: process.version });
  });

  test("GIVEN the binary alone WHEN capsule --help THEN every command is listed", async () => {
    const help = await run(["--help"]);
    assert.equal(help.code, 0, help.stderr);
    for (const command of [
      "pg",
      "redis",
      "es",
      "plan",
      "run",
      "start",
      "serve",
      "install",
      "version",
      "completion",
    ])
      assert.match(help.stdout, new RegExp(`capsule ${command}\\b`), `--help lists capsule ${command}`);
  });

  test("GIVEN the binary alone WHEN capsule completion bash THEN the same script as the source tree generates", async () => {
    const fromBinary = await run(["completion", "bash"]);
    assert.equal(fromBinary.code, 0, fromBinary.stderr);
    assert.match(fromBinary.stdout, /--restore/);
    assert.equal(fromBinary.stdout, (await capsule(["completion", "bash"])).stdout);
  });

  test("GIVEN the example plan WHEN capsule plan --dry-run THEN the same CronJobs as the source tree compiles", async () => {
    const plans = path.join(root, "plans");
    const fromBinary = await run(["plan", "--dry-run", "--plans", plans]);
    assert.equal(fromBinary.code, 0, fromBinary.stderr);
    assert.match(fromBinary.stdout, /kind: CronJob/);
    const fromSource = await capsule(["plan", "--dry-run", "--plans", plans]);
    assert.equal(fromBinary.stdout, fromSource.stdout);
  });

  test("GIVEN PostgreSQL and the harness' S3 WHEN pg --create, --list, --describe, --download and --restore THEN the binary finds the tools on PATH and round-trips the data", async () => {
    const bucket = uniqueName("release");
    await createBucket(servers.s3, bucket);
    const database = uniqueName("release").replace(/-/g, "_");
    await sql(servers, "postgres", `CREATE DATABASE ${database}`);
    await sql(servers, database, "CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1000) g");
    const env = {
      ...s3Env(servers.s3),
      ...pgEnv(servers, database),
      CAPSULE_BUCKET: `s3://${bucket}/capsule`,
      CAPSULE_CLUSTER: "release",
    };

    const created = await run(["pg", "--create"], env);
    assert.equal(created.code, 0, created.stderr);
    const id = created.stdout.trim();
    const listed = await run(["pg", "--list", "-o", "json"], env);
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal(listed.stderr, "", "nothing but the listing: no runtime or SDK warnings");
    assert.deepEqual(
      (JSON.parse(listed.stdout) as Array<{ backupId: string; state: string }>).map((e) => [
        e.backupId,
        e.state,
      ]),
      [[id, "succeeded"]],
    );
    const described = await run(["pg", "--describe", "--id", id, "-o", "json"], env);
    const statefile = JSON.parse(described.stdout) as {
      tool: Record<string, string>;
      fingerprint: { tables: Record<string, number> };
    };
    assert.equal(statefile.tool["capsule"], release.stamp.version);
    assert.ok(statefile.tool["pg_dump"], "pg_dump's version is recorded");
    assert.deepEqual(Object.values(statefile.fingerprint.tables), [1000]);
    assert.doesNotMatch(
      listed.stdout + listed.stderr + created.stderr,
      new RegExp(servers.s3.secretAccessKey),
    );

    // The laptop's other admin tasks: a verified download, and a restore through pg_restore found on PATH.
    const file = path.join(home, "t.dump");
    const downloaded = await run(["pg", "--download", "--id", id, "--to", file], env);
    assert.equal(downloaded.code, 0, downloaded.stderr);
    const { stdout: toc } = await exec(path.join(servers.pg.binDir, "pg_restore"), ["--list", file]);
    assert.match(toc, /TABLE DATA public t /);
    const copy = `${database}_copy`;
    const restored = await run(["pg", "--restore", "--yes", "--id", id, "--to-database", copy], env);
    assert.equal(restored.code, 0, restored.stderr);
    assert.equal((await sql(servers, copy, "SELECT count(*)::int AS n FROM t"))[0]!["n"], 1000);
  });

  test("GIVEN a kube context and no --bucket WHEN pg --list --cluster THEN the binary reads the CnvrgApp's bucket Secret through client-node", async () => {
    const bucket = uniqueName("release-kube");
    await createBucket(servers.s3, bucket);
    const store = openBackupStore({ bucket: `s3://${bucket}/capsule` }, s3Env(servers.s3));
    const backupId = "postgresql-20261120T010000Z-abcdef";
    const s = statefile({ cluster: "ml.cnvrg", backupId, at: "2026-11-20T01:00:00.000Z" });
    await objectsOf(store).put(layout.statefileKey(prefixOf(store), s), serializeStatefile(s));
    const fake = await new FakeKubeApiServer().start();
    try {
      fake.put("cnvrgapps", cnvrgApp("ml", "cnvrg"));
      fake.putSecret("ml", "cp-object-storage", cnvrgStorageSecret(servers.s3, bucket));
      const listed = await run(["pg", "--list", "--cluster", "ml.cnvrg", "-o", "json"], {
        KUBECONFIG: await fake.kubeconfigFile(),
      });
      assert.equal(listed.code, 0, listed.stderr);
      assert.equal(listed.stderr, "");
      assert.deepEqual(
        (JSON.parse(listed.stdout) as Array<{ backupId: string }>).map((e) => e.backupId),
        [backupId],
      );
    } finally {
      await fake.close();
    }
  });

  test("GIVEN capsule serve from the binary WHEN /healthz, /metrics and the status page are read THEN they carry the stamped build and the page's files, and stderr holds only log lines", async () => {
    const child = spawn(binary, ["serve", "--bucket", `file://${home}/served`, "--listen", "127.0.0.1:0"], {
      cwd: home,
      env: { PATH: toolsPath, HOME: home, CAPSULE_LOG_LEVEL: "info" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    const listening = new Promise<number>((resolve, reject) => {
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
        stderr += chunk;
        const port = /"address":"127\.0\.0\.1:(\d+)"/.exec(stderr)?.[1];
        if (port) resolve(Number(port));
      });
      child.once("exit", (code) => reject(new Error(`capsule serve exited ${code}: ${stderr}`)));
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      const port = await listening;
      const { version, commit, date } = release.stamp;
      const health = (await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as Record<
        string,
        string
      >;
      assert.deepEqual(health, { status: "ok", version, commit, date, node: process.version });
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      assert.ok(
        metrics.includes(
          `capsule_build_info{version="${version}",commit="${commit}",date="${date}",node="${process.version}"} 1`,
        ),
        "capsule_build_info carries the stamp",
      );
      // The status page's files are inside the binary: the page, its script and its stylesheet are served.
      const page = await fetch(`http://127.0.0.1:${port}/`);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /<script type="module" src="\/ui\/app\.js">/);
      for (const asset of ["/ui/app.js", "/ui/app.css"]) {
        const res = await fetch(`http://127.0.0.1:${port}${asset}`);
        assert.equal(res.status, 200, asset);
        assert.equal(
          await res.text(),
          readFileSync(path.join("src/status/page", asset.slice(4)), "utf8"),
          asset,
        );
      }
    } finally {
      child.kill("SIGTERM");
    }
    assert.equal(await exited, 0, stderr);
    for (const line of stderr.split("\n").filter(Boolean))
      assert.doesNotThrow(() => JSON.parse(line), `stderr line is not a log line: ${line}`);
  });

  test("GIVEN no pg_dump on PATH WHEN pg --create THEN one line on stderr names the tool and its package, exit 1", async () => {
    const env = {
      ...s3Env(servers.s3),
      ...pgEnv(servers, "postgres"),
      CAPSULE_BUCKET: `file://${home}/bucket`,
    };
    const result = await run(["pg", "--create"], { ...env, PATH: noPgPath });
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "");
    assert.equal(
      result.stderr,
      "capsule: CAPSULE_TOOL_MISSING: pg_dump not found on PATH: install postgresql-client\n",
    );
  });
});
