/**
 * What only the Azure adapter does, against Azurite: conditional writes on ETags, the uncommitted blocks a killed
 * upload leaves, paging, and one clear line for each way its settings can be wrong. The store contract itself runs
 * on Azure in backup-store.test.ts.
 */
import assert from "node:assert/strict";
import { Readable, Transform } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { before, describe, test } from "node:test";
import { ErrorCode, PreconditionFailedError } from "../../src/domain/errors.js";
import type { Statefile } from "../../src/domain/statefile.js";
import { openBackupStore } from "../../src/runtime/bucket.js";
import { AzureObjectStore } from "../../src/storage/azure-object-store.js";
import { layout } from "../../src/storage/layout.js";
import { openBucket } from "../../src/storage/open-store.js";
import { azureConnectionStringFor, startAzurite, type AzuriteServer } from "../harness/azurite.js";
import { azureEnv, createContainer, testServers, uniqueName, type TestServers } from "../harness/index.js";
import { capsule } from "../support/cli.js";
import { startCapsule, type CapsuleProcess } from "../support/capsule-process.js";
import { pgEnv, sql } from "../support/pg.js";
import { prefixOf } from "../support/raw-bucket.js";
import { generatedStream, sha256Of } from "../support/streams.js";

const MiB = 1 << 20;

describe("azure object store", () => {
  let servers: TestServers;
  let container: string;
  let env: Record<string, string>;

  before(async () => {
    servers = await testServers();
    container = uniqueName("az");
    await createContainer(servers.azure, container);
    env = azureEnv(servers.azure);
  });

  function objects(prefix = "t"): AzureObjectStore {
    const { store } = openBucket(`azure://${container}/${prefix}`, {}, env);
    assert.ok(store instanceof AzureObjectStore);
    return store;
  }

  test("GIVEN an object WHEN written with a stale If-Match or with If-None-Match: * THEN the precondition error the S3 adapter raises, and the object is unchanged", async () => {
    const store = objects();
    const key = `t/${uniqueName("cond")}/statefile.json`;
    const first = await store.put(key, "one", { ifNoneMatch: "*" });
    assert.ok(first.etag);
    const second = await store.put(key, "two", { ifMatch: first.etag });
    assert.ok(second.etag && second.etag !== first.etag);

    for (const options of [{ ifMatch: first.etag }, { ifNoneMatch: "*" as const }]) {
      const refused = await store.put(key, "three", options).then(
        () => undefined,
        (error: unknown) => error,
      );
      assert.ok(refused instanceof PreconditionFailedError, String(refused));
      assert.equal(refused.code, ErrorCode.PreconditionFailed);
      assert.match(refused.message, /the object changed since it was read/);
    }
    const now = await store.getWithEtag(key);
    assert.equal(now.bytes.toString(), "two");
    assert.equal(now.etag, second.etag);
    // A stream with a stale tag is refused at the commit, and leaves no uncommitted blocks behind.
    const streamed = store.put(key, Readable.from([Buffer.alloc(3 * MiB, 1)]), { ifMatch: first.etag });
    await assert.rejects(streamed, PreconditionFailedError);
    assert.equal((await store.getWithEtag(key)).bytes.toString(), "two");
  });

  test("GIVEN more blobs than a page holds WHEN listed with a small page size THEN every committed blob comes back once, in key order", async () => {
    const store = objects();
    const base = `t/${uniqueName("page")}/`;
    const names = ["b", "a", "a-1", "a/1", "a/0", "B", "c.json", "a.b", "z", "0"];
    await Promise.all(names.map((n) => store.put(`${base}${n}`, n)));
    // A blob with only uncommitted blocks is no object: listings never show it.
    const killed = store.put(`${base}half`, failingAfter(9 * MiB));
    await assert.rejects(killed, /source failed/);
    const listed = [];
    for await (const o of store.list(base, { pageSize: 3 })) listed.push(o.key.slice(base.length));
    assert.deepEqual(listed, [...names].sort());
    const under = [];
    for await (const o of store.list(`${base}a/`, { pageSize: 1 })) under.push(o.size);
    assert.deepEqual(under, [3, 3]);
  });

  test("GIVEN a capsule process SIGKILLed mid-upload WHEN --check looks for leftovers THEN its blob of uncommitted blocks is left while the run may be alive, then found and removed, and nothing else is touched", async () => {
    const database = uniqueName("azkill").replace(/-/g, "_");
    await sql(servers, "postgres", `CREATE DATABASE ${database}`);
    // ~115 MB of random hex (a subquery that names g runs per row), so the dump is still uploading when killed.
    await sql(
      servers,
      database,
      "CREATE TABLE big (id int, s text); INSERT INTO big SELECT g, (SELECT string_agg(md5(random()::text || g || i), '') FROM generate_series(1, 30) i) FROM generate_series(1, 120000) g;",
    );
    const bucket = `azure://${container}/killed`;
    const store = openBackupStore({ bucket }, env);
    const raw = objects("killed");
    const survivor = `${prefixOf(store)}/keep/me.txt`;
    await raw.put(survivor, "a committed blob");
    const run = startCapsule(["pg", "--create", "--cluster", "azkill", "--bucket", bucket], {
      ...env,
      ...pgEnv(servers, database),
    });
    try {
      const backupPrefix = await waitFor(async () => {
        const entry = (await store.list({ cluster: "azkill", engine: "postgresql" }))[0];
        if (!entry) return undefined;
        const prefix = layout.backupPrefix(prefixOf(store), entry.ref);
        return (await raw.listIncompleteUploads(prefix)).length > 0 ? prefix : undefined;
      }, run);
      run.signal("SIGKILL");
      const { signal } = await run.exited;
      assert.equal(signal, "SIGKILL");

      const left = await raw.listIncompleteUploads(prefixOf(store));
      assert.equal(left.length, 1);
      assert.ok(left[0]?.startsWith(backupPrefix), left[0]);
      const check = (...extra: string[]) =>
        capsule(["pg", "--check", "--cluster", "azkill", "--bucket", bucket, "-o", "json", ...extra], env);
      // Killed seconds ago, the run still looks alive (its heartbeat is fresh): its upload is left alone.
      const fresh = await check("--yes");
      assert.equal(fresh.code, 0, fresh.stderr);
      assert.deepEqual(JSON.parse(fresh.stdout), []);
      assert.equal((await raw.listIncompleteUploads(prefixOf(store))).length, 1);

      // Ten minutes later (its heartbeat made old by hand), the run is abandoned and its blocks a leftover.
      const [entry] = await store.list({ cluster: "azkill", engine: "postgresql" });
      assert.ok(entry);
      const statefile = JSON.parse((await raw.getWithEtag(entry.key)).bytes.toString()) as Statefile;
      statefile.heartbeatAt = new Date(Date.now() - 3_600_000).toISOString();
      await raw.put(entry.key, JSON.stringify(statefile));
      const found = await check();
      assert.equal(found.code, 1);
      assert.deepEqual(
        (JSON.parse(found.stdout) as Array<{ kind: string; key: string }>).map((f) => [f.kind, f.key]),
        [["incomplete-upload", left[0]]],
      );
      assert.match(found.stderr, /incomplete uploads in 1 backup\(s\); --check --yes aborts them/);
      const fixed = await check("--yes");
      assert.equal(fixed.code, 0, fixed.stderr);
      assert.match(fixed.stderr, /aborted 1 incomplete upload/);
      assert.deepEqual(await raw.listIncompleteUploads(prefixOf(store)), []);
      assert.equal((await raw.getWithEtag(survivor)).bytes.toString(), "a committed blob");
      // The run's statefile stays, as abandoned: --list shows it, never as succeeded.
      const listed = await capsule(
        ["pg", "--list", "--cluster", "azkill", "--bucket", bucket, "-o", "json"],
        env,
      );
      assert.equal(listed.code, 0, listed.stderr);
      assert.deepEqual(
        (JSON.parse(listed.stdout) as Array<{ state: string }>).map((e) => e.state),
        ["abandoned"],
      );
    } finally {
      if (run.running()) run.signal("SIGKILL");
    }
  });

  test("GIVEN Azurite stopped mid-upload and back 2 s later WHEN a backup uploads THEN it rides the outage out and the bytes read back match", async () => {
    const own = await startAzurite();
    let back: Promise<AzuriteServer> | undefined;
    try {
      await createContainer(own, "outage");
      const store = openBackupStore({ bucket: "azure://outage/capsule" }, azureEnv(own));
      const run = await store.begin({
        cluster: "outage",
        target: "db",
        engine: "postgresql",
        trigger: { type: "manual" },
        source: {},
        tool: { capsule: "test" },
      });
      const size = 48 * MiB;
      const expected = await sha256Of(generatedStream(size, 11));
      let seen = 0;
      const tap = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          seen += chunk.length;
          if (!back && seen >= 16 * MiB) {
            // The server goes away with blocks in flight and comes back on the same port with its data.
            back = own.halt().then(async () => {
              await sleep(2000);
              return startAzurite({ port: own.port, dir: own.dir });
            });
          }
          done(null, chunk);
        },
      });
      const uploaded = await run.uploadArtifact("a.bin", generatedStream(size, 11).pipe(tap), {
        sizeHint: size,
      });
      assert.ok(back, "the server was stopped mid-upload");
      await run.commit({ artifact: { name: "a.bin", format: "t", compression: "none", ...uploaded } });
      const entry = await store.get(run.ref);
      assert.equal(entry.state, "succeeded");
      assert.deepEqual(await sha256Of(await store.openArtifact(entry)), expected);
    } finally {
      await (await back)?.stop();
      await own.stop();
    }
  });

  test("GIVEN AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY with an endpoint WHEN listing THEN it works, as a CronJob from a cnvrg bucket Secret runs it", async () => {
    const byKey = {
      AZURE_STORAGE_ACCOUNT: servers.azure.account,
      AZURE_STORAGE_KEY: servers.azure.key,
    };
    const result = await capsule(
      ["pg", "--list", "--bucket", `azure://${container}`, "--endpoint", servers.azure.blobEndpoint],
      byKey,
    );
    assert.equal(result.code, 0, result.stderr);
  });

  describe("one clear line", () => {
    test("GIVEN a wrong account key WHEN listing THEN access denied, naming the variables, without the key", async () => {
      const wrongKey = Buffer.from("definitely-not-the-key-of-this-account").toString("base64");
      for (const wrong of [
        {
          AZURE_STORAGE_ACCOUNT: servers.azure.account,
          AZURE_STORAGE_KEY: wrongKey,
        },
        {
          AZURE_STORAGE_CONNECTION_STRING: azureConnectionStringFor(servers.azure.blobEndpoint, wrongKey),
        },
      ]) {
        const endpoint = "AZURE_STORAGE_KEY" in wrong ? ["--endpoint", servers.azure.blobEndpoint] : [];
        const result = await capsule(
          ["pg", "--list", "--bucket", `azure://${container}`, ...endpoint],
          wrong,
        );
        assert.equal(result.code, 1);
        assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
        assert.match(
          result.stderr,
          /CAPSULE_STORE_ACCESS_DENIED: .*access denied \((AuthenticationFailed|AuthorizationFailure)\)/,
        );
        assert.match(result.stderr, /AZURE_STORAGE_(KEY|CONNECTION_STRING)/);
        assert.doesNotMatch(result.stderr, new RegExp(wrongKey.slice(0, 20)));
      }
    });

    test("GIVEN a container that does not exist WHEN listing THEN it says so", async () => {
      const result = await capsule(["pg", "--list", "--bucket", `azure://${uniqueName("missing")}`], env);
      assert.equal(result.code, 1);
      assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
      assert.match(
        result.stderr,
        /CAPSULE_STORE_NO_SUCH_BUCKET: azure:\/\/missing-\w+ at .*container does not exist/,
      );
    });

    test("GIVEN an endpoint nobody listens on WHEN listing THEN unreachable", async () => {
      const result = await capsule(["pg", "--list", "--bucket", `azure://${container}`], {
        AZURE_STORAGE_CONNECTION_STRING: azureConnectionStringFor(
          "http://127.0.0.1:9/devstoreaccount1",
          servers.azure.key,
        ),
      });
      assert.equal(result.code, 1);
      assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
      assert.match(result.stderr, /endpoint unreachable \(ECONNREFUSED\)/);
      assert.doesNotMatch(result.stderr, new RegExp(servers.azure.key.slice(0, 20)));
    });

    for (const [url, extraEnv, message] of [
      ["azure://Bad_Container/x", {}, /"Bad_Container" is not a valid container name/],
      ["azure://ab/x", {}, /"ab" is not a valid container name/],
      ["azure://a--b/x", {}, /"a--b" is not a valid container name/],
      ["azure://user:secretpw@container/x", {}, /credentials do not belong/],
      ["azure://container/x?sig=secretpw", {}, /credentials do not belong/],
      ["azure://container/backups/.hidden", {}, /bucket prefix/],
      [
        "azure://container/x",
        { AZURE_STORAGE_CONNECTION_STRING: "" },
        /no Azure storage account: set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN/,
      ],
      ["azure://container/x", { AZURE_STORAGE_ACCOUNT: "Not_An_Account" }, /AZURE_STORAGE_ACCOUNT must be/],
    ] as const) {
      test(`GIVEN --bucket ${url} ${JSON.stringify(extraEnv)} WHEN used THEN one clear line`, async () => {
        const result = await capsule(["pg", "--list", "--bucket", url], extraEnv);
        assert.equal(result.code, 1);
        assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
        assert.match(result.stderr, message);
        assert.doesNotMatch(result.stderr, /secretpw/);
      });
    }
  });
});

/** A stream of 1 MiB chunks that fails after `bytes`: an upload cut off after some blocks were staged. */
function failingAfter(bytes: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= bytes) this.destroy(new Error("source failed"));
      else {
        sent += MiB;
        this.push(Buffer.alloc(MiB, 7));
      }
    },
  });
}

async function waitFor<T>(probe: () => Promise<T | undefined>, run: CapsuleProcess): Promise<T> {
  for (let i = 0; i < 600; i++) {
    if (!run.running()) throw new Error(`capsule exited before it was killed: ${run.stderr()}`);
    const found = await probe();
    if (found !== undefined) return found;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("no upload in progress was seen in time");
}
