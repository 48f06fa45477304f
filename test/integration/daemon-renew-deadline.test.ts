/**
 * Leadership under a hung Lease renewal (issue #16 item 16), two `capsule start` daemons against the fake API
 * server. The leader's renewals hang (never answered, never applied) while CnvrgApps keep arriving, so a leader
 * that still believed it led would keep writing CronJobs. The fake's write log names the client of every write, in
 * the order the store applied them: that order, not a clock, shows who wrote what before or after the takeover.
 *
 * The client request timeout is twice the Lease on purpose: the renew deadline must bound a renewal by itself,
 * whatever the client's own timeout is (the issue: it equalled the Lease, so the step-down came too late).
 */
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";
import { Daemon } from "../../src/daemon/daemon.js";
import { cnvrgApp } from "../fakes/cnvrgapps.js";
import { FakeKubeApiServer } from "../fakes/kube-apiserver.js";
import { capturedLogger, eventually } from "../fakes/kube-clients.js";

const LEASE = { name: "capsule-leader", namespace: "capsule-system" };
const TIMING = { durationMs: 1500, renewDeadlineMs: 1000, retryPeriodMs: 100 };

describe("capsule start: a hung Lease renewal (fake API server)", () => {
  let fake: FakeKubeApiServer;
  let churn: NodeJS.Timeout | undefined;
  const daemons: Daemon[] = [];

  beforeEach(async () => {
    fake = await new FakeKubeApiServer().start();
    for (let i = 0; i < 3; i++) fake.put("cnvrgapps", cnvrgApp(`ns-${i}`, `app-${i}`));
  });
  afterEach(async () => {
    if (churn) clearInterval(churn);
    fake.clearFaults();
    await Promise.all(daemons.splice(0).map((d) => d.stop()));
    await fake.close();
  });

  async function daemon(identity: string): Promise<{ d: Daemon }> {
    const log = capturedLogger(identity);
    const d = new Daemon({
      kube: { kubeconfig: await fake.kubeconfigFile(identity), requestTimeoutMs: 2 * TIMING.durationMs },
      listen: { host: "127.0.0.1", port: 0 },
      identity,
      lease: { ...LEASE, ...TIMING },
      resyncMs: 60_000,
      debounceMs: 10,
      initialBackoffMs: 50,
      processMetrics: false,
      log,
      targetBuckets: false,
    });
    daemons.push(d);
    await d.start();
    return { d };
  }

  const holder = () =>
    (fake.get("leases", LEASE.namespace, LEASE.name)?.["spec"] as { holderIdentity?: string } | undefined)
      ?.holderIdentity;
  const cronJobWrites = (user: string) =>
    fake.writeLog.filter((w) => w.resource === "cronjobs" && w.user === user).length;

  test("GIVEN a leader whose renewals hang WHEN the renew deadline passes THEN it stops writing CronJobs before the Lease expires and the standby takes over without overlap", async () => {
    const { d: a } = await daemon("replica-a");
    await eventually(() => a.isLeader && fake.list("cronjobs").length === 3, 5000, "a leads and reconciles");
    const { d: b } = await daemon("replica-b");

    // A new CnvrgApp every 25 ms: whoever leads has a CronJob to create on every pass.
    let next = 0;
    churn = setInterval(() => fake.put("cnvrgapps", cnvrgApp(`churn-${next++}`, "app")), 25);
    const before = cronJobWrites("replica-a");
    await eventually(() => cronJobWrites("replica-a") > before + 3, 5000, "a keeps creating CronJobs");

    fake.hangLeaseUpdates("replica-a");
    await eventually(() => !a.isLeader, 3 * TIMING.durationMs, "a steps down");
    assert.equal(holder(), "replica-a", "a stepped down while the Lease still named it: before it expired");
    assert.equal(b.isLeader, false, "b had not taken over yet");

    await eventually(() => b.isLeader, 4 * TIMING.durationMs, "b takes over after expiry");
    const aWritesAtTakeover = cronJobWrites("replica-a");
    const bWritesAtTakeover = cronJobWrites("replica-b");
    await eventually(() => cronJobWrites("replica-b") > bWritesAtTakeover + 3, 5000, "b creates CronJobs");
    clearInterval(churn);
    churn = undefined;

    // Writes a sent before its deadline may land just after it (the fence stops new ones, not those on the wire);
    // none may land once b leads, and none after that.
    const takeover = fake.writeLog.findIndex((w) => w.resource === "leases" && w.user === "replica-b");
    const lastByA = fake.writeLog.findLastIndex((w) => w.resource === "cronjobs" && w.user === "replica-a");
    assert.ok(
      takeover >= 0 && lastByA < takeover,
      `a's last CronJob write (#${lastByA}) precedes b's takeover (#${takeover})`,
    );
    assert.equal(cronJobWrites("replica-a"), aWritesAtTakeover, "a wrote no CronJob once b led");
    assert.equal(holder(), "replica-b");
    assert.equal(a.isLeader, false, "a never led again on a renewal it could not make");
  });
});
