/**
 * `capsule start` as a whole against the fake API server: two daemons share one Lease; one leads and reconciles,
 * the other stands by and takes over when the leader stops (released Lease) or dies (stops renewing). And the real
 * binary, stopped with SIGTERM, releases its Lease and exits 0.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { afterEach, beforeEach, describe, test } from "node:test";
import { Daemon, type DaemonConfig } from "../../src/daemon/daemon.js";
import { cnvrgApp } from "../fakes/cnvrgapps.js";
import { FakeKubeApiServer } from "../fakes/kube-apiserver.js";
import { capturedLogger, eventually } from "../fakes/kube-clients.js";

const LEASE = { name: "capsule-leader", namespace: "capsule-system" };

describe("capsule start: leadership (fake API server)", () => {
  let fake: FakeKubeApiServer;
  const daemons: Daemon[] = [];

  beforeEach(async () => {
    fake = await new FakeKubeApiServer().start();
    for (let i = 0; i < 3; i++) fake.put("cnvrgapps", cnvrgApp(`ns-${i}`, `app-${i}`));
  });
  afterEach(async () => {
    fake.clearFaults();
    await Promise.all(daemons.splice(0).map((d) => d.stop()));
    await fake.close();
  });

  async function daemon(identity: string, overrides: Partial<DaemonConfig> = {}): Promise<Daemon> {
    const d = new Daemon({
      kube: { kubeconfig: await fake.kubeconfigFile(identity), requestTimeoutMs: 300 },
      listen: { host: "127.0.0.1", port: 0 },
      identity,
      lease: { ...LEASE, durationMs: 1500, renewDeadlineMs: 1000, retryPeriodMs: 100 },
      resyncMs: 60_000,
      debounceMs: 10,
      initialBackoffMs: 50,
      processMetrics: false,
      log: capturedLogger(identity),
      ...overrides,
    });
    daemons.push(d);
    await d.start();
    return d;
  }

  const holder = () =>
    (fake.get("leases", LEASE.namespace, LEASE.name)?.["spec"] as { holderIdentity?: string } | undefined)
      ?.holderIdentity;

  test("GIVEN two daemons WHEN they start THEN exactly one leads and reconciles; the other stands by", async () => {
    const a = await daemon("replica-a");
    await eventually(() => a.isLeader && fake.list("cronjobs").length === 3, 5000, "a leads and reconciles");
    const b = await daemon("replica-b");
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(b.isLeader, false);
    assert.equal(holder(), "replica-a");
    assert.equal(b.lastPassResult, undefined, "a standby never reconciles");
    const lease = fake.get("leases", LEASE.namespace, LEASE.name)?.["spec"] as Record<string, unknown>;
    assert.match(String(lease["renewTime"]), /\.\d{6}Z$/, "Lease times are MicroTime");
  });

  test("GIVEN a leader WHEN it stops THEN it releases the Lease and the standby takes over at once", async () => {
    // A Lease that would take a minute to expire: b can only lead within the wait below if a released it.
    const lease = { ...LEASE, durationMs: 60_000, renewDeadlineMs: 1000, retryPeriodMs: 100 };
    const a = await daemon("replica-a", { lease });
    await eventually(() => a.isLeader, 5000, "a leads");
    const b = await daemon("replica-b", { lease });
    await a.stop();
    daemons.splice(daemons.indexOf(a), 1);
    await eventually(() => b.isLeader, 15_000, "b leads, without waiting for the Lease to expire");
    assert.equal(holder(), "replica-b");
    // The new leader reconciles: an app added now gets its CronJob.
    fake.put("cnvrgapps", cnvrgApp("ns-new", "app"));
    await eventually(
      () => fake.get("cronjobs", "ns-new", "capsule-ns-new-app-postgresql") !== undefined,
      5000,
      "b reconciles",
    );
  });

  test("GIVEN a leader WHEN it can no longer reach the API THEN it steps down and the standby takes over after expiry", async () => {
    const a = await daemon("replica-a");
    await eventually(() => a.isLeader, 5000, "a leads");
    const b = await daemon("replica-b");
    await new Promise((r) => setTimeout(r, 300));
    fake.failNext({ path: "/", user: "replica-a", count: 1_000_000, mode: "timeout" });
    await eventually(() => b.isLeader, 8000, "b takes over");
    await eventually(() => !a.isLeader, 3000, "a steps down");
    const lease = fake.get("leases", LEASE.namespace, LEASE.name)?.["spec"] as { leaseTransitions?: number };
    assert.equal(holder(), "replica-b");
    assert.equal(lease.leaseTransitions, 1);
  });

  test("GIVEN a leader WHEN readiness is asked THEN it is ready after its first pass; a standby is ready too", async () => {
    const a = await daemon("replica-a");
    await eventually(() => a.isLeader && a.lastPassResult !== undefined, 5000, "a reconciles");
    const b = await daemon("replica-b");
    for (const d of [a, b]) {
      const port = (
        d as unknown as { server: { server: { address(): { port: number } } } }
      ).server.server.address().port;
      // Ready once its buckets were read (here: the targets' bucket Secrets do not exist, so there are none).
      let last = "";
      await eventually(
        async () => {
          const res = await fetch(`http://127.0.0.1:${port}/readyz`);
          last = JSON.stringify(await res.json());
          return res.status === 200;
        },
        5000,
        "ready",
      ).catch(() => assert.fail(last));
    }
  });
});

describe("capsule start: the binary and SIGTERM (fake API server)", () => {
  test("GIVEN `capsule start` leading WHEN it gets SIGTERM THEN it releases the Lease and exits 0", async () => {
    const fake = await new FakeKubeApiServer().start();
    let child: ChildProcess | undefined;
    try {
      fake.put("cnvrgapps", cnvrgApp("cnvrg", "app"));
      const kubeconfig = await fake.kubeconfigFile();
      const daemon = spawn(
        process.execPath,
        [
          "--import",
          "tsx",
          "src/cli.ts",
          "start",
          "--kubeconfig",
          kubeconfig,
          "--listen",
          "127.0.0.1:0",
          "--lease-namespace",
          "capsule-system",
          "--identity",
          "pod-1",
        ],
        { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, CAPSULE_LOG_LEVEL: "info" } },
      );
      child = daemon;
      let stderr = "";
      daemon.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
      const exited = new Promise<number | null>((resolve) => daemon.once("exit", (code) => resolve(code)));
      await eventually(
        () => fake.get("cronjobs", "cnvrg", "capsule-cnvrg-app-postgresql") !== undefined,
        20_000,
        `the CronJob (stderr: ${stderr})`,
      );
      const port = Number(/"address":"127\.0\.0\.1:(\d+)"/.exec(stderr)?.[1]);
      assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
      daemon.kill("SIGTERM");
      assert.equal(await exited, 0, stderr);
      const spec = fake.get("leases", "capsule-system", "capsule-leader")?.["spec"] as {
        holderIdentity?: string;
      };
      assert.equal(spec.holderIdentity, undefined, "the Lease was released");
      assert.match(stderr, /released the Lease/);
      assert.match(stderr, /"msg":"stopped"/);
    } finally {
      // A daemon left running when an assertion failed would keep this file, and the whole suite, from ending.
      if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await fake.close();
    }
  });
});
