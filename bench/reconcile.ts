/**
 * bench/reconcile (issue 5): N CnvrgApps (default 1,000, three engines each) in the fake API server; the reconciler
 * converges from an empty cluster (time, writes), then runs a second pass over the unchanged world (must write 0),
 * and reports peak RSS. The fake runs in the same process, so its cost is included: figures are an upper bound.
 *   npx tsx bench/reconcile.ts [apps]
 */
import { Reconciler } from "../src/reconciler/reconciler.js";
import { createLogger } from "../src/log.js";
import { cnvrgApp } from "../test/fakes/cnvrgapps.js";
import { FakeKubeApiServer } from "../test/fakes/kube-apiserver.js";
import { clientsFor } from "../test/fakes/kube-clients.js";

const APPS = Number(process.argv[2] ?? 1000);
const fake = await new FakeKubeApiServer({ historySize: 100 }).start();
let peak = process.memoryUsage().rss;
const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
try {
  for (let i = 0; i < APPS; i++) {
    fake.put(
      "cnvrgapps",
      cnvrgApp(`ns-${i % 50}`, `app-${i}`, { engines: ["postgresql", "redis", "elasticsearch"] }),
    );
  }
  const { kube, workloads } = await clientsFor(fake, 30_000);
  const reconciler = new Reconciler({ kube, workloads, log: createLogger({ level: "error" }) });
  let t0 = performance.now();
  const first = await reconciler.pass();
  const converge = (performance.now() - t0) / 1000;
  const firstWrites = fake.writeCount();
  fake.resetCounters();
  t0 = performance.now();
  const second = await reconciler.pass();
  const steady = (performance.now() - t0) / 1000;
  console.log(`apps:                     ${APPS}`);
  console.log(
    `converge from empty:      ${converge.toFixed(2)} s, ${first.created} CronJobs created, ${firstWrites} writes, ${first.failed} failed`,
  );
  console.log(
    `second pass (unchanged):  ${steady.toFixed(2)} s, ${fake.writeCount()} writes (must be 0), ${second.unchanged} unchanged`,
  );
  console.log(`peak RSS (daemon + fake): ${(peak / 2 ** 20).toFixed(0)} MB`);
  if (fake.writeCount() !== 0) process.exitCode = 1;
} finally {
  clearInterval(sampler);
  await fake.close();
}
