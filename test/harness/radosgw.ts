/**
 * A throwaway single-node Ceph with an S3 endpoint: one monitor, one memstore OSD (data in RAM) and radosgw,
 * no manager, no systemd, no authentication, loopback only. Every port is picked free, so two runs can share a
 * machine; every ceph command gets --conf explicitly.
 */
import { randomUUID } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePorts } from "./ports.js";
import {
  type Daemon,
  HarnessError,
  keepTempDir,
  makeTempDir,
  removeTempDir,
  requireBinary,
  run,
  startDaemon,
  waitFor,
} from "./process.js";
import { createBucket, type S3Info } from "./s3.js";

export const S3_ACCESS_KEY = "capsule-test-ak";
export const S3_SECRET_KEY = "capsule-test-sk";
export const S3_REGION = "us-east-1";

export interface RadosgwServer extends S3Info {
  /** The ceph.conf of this cluster (for radosgw-admin --conf ...). */
  cephConf: string;
  dir: string;
  logDir: string;
  stop(): Promise<void>;
}

/**
 * Bytes of RAM the memstore OSD may hold. Memory is taken only as data is written, but the OSD counts its own
 * overhead against this: with 3 GiB a single 1 GiB benchmark upload marked the OSD full (writes then hang).
 */
const MEMSTORE_BYTES = 8 * 1024 ** 3;

function cephConf(dir: string, fsid: string, monPort: number, rgwPort: number): string {
  return `[global]
fsid = ${fsid}
mon host = v2:127.0.0.1:${monPort}
mon initial members = a
public network = 127.0.0.0/8
ms bind msgr1 = false
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
# Each pool radosgw creates is a few osdmap changes; the default 1 s between proposals makes start-up 10 s slower.
paxos propose interval = 0.05
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
run dir = ${dir}/run
admin socket = ${dir}/run/$name.asok
log file = ${dir}/log/$name.log
pid file = ${dir}/run/$name.pid
keyring = ${dir}/keyring
mon data = ${dir}/mon
osd data = ${dir}/osd$id
osd objectstore = memstore
memstore device bytes = ${MEMSTORE_BYTES}
osd memory target = 1073741824
[client.rgw.a]
# tcp_nodelay: with Nagle on, beast's response body waits for the ACK of its headers, which Linux delays 40 ms on a
# reused connection: every small GET took 48 ms (docs/adr/0020, "Reading statefiles").
rgw frontends = beast endpoint=127.0.0.1:${rgwPort} tcp_nodelay=1
rgw data = ${dir}/rgw
`;
}

export async function startRadosgw(): Promise<RadosgwServer> {
  const bins = {
    ceph: requireBinary("ceph", "ceph-common"),
    cephAuthtool: requireBinary("ceph-authtool", "ceph-common"),
    monmaptool: requireBinary("monmaptool", "ceph-base"),
    cephMon: requireBinary("ceph-mon", "ceph-mon"),
    cephOsd: requireBinary("ceph-osd", "ceph-osd"),
    radosgw: requireBinary("radosgw", "radosgw"),
    radosgwAdmin: requireBinary("radosgw-admin", "radosgw"),
  };
  const dir = makeTempDir("capsule-rgw-");
  for (const sub of ["mon", "osd0", "run", "log", "rgw"]) mkdirSync(join(dir, sub));
  const logDir = join(dir, "log");
  const conf = join(dir, "ceph.conf");
  const [monPort = 0, rgwPort = 0] = await freePorts(2);
  const fsid = randomUUID();
  writeFileSync(conf, cephConf(dir, fsid, monPort, rgwPort));
  const env: NodeJS.ProcessEnv = { ...process.env, CEPH_CONF: conf };
  const c = ["--conf", conf];
  const log = (name: string) => join(logDir, name);
  const daemons: Daemon[] = [];
  // CAPSULE_TEST_VERBOSE=1 prints how long each start-up step took.
  const verbose = process.env["CAPSULE_TEST_VERBOSE"] === "1";
  const t0 = performance.now();
  const step = (what: string) => {
    if (verbose)
      process.stderr.write(`radosgw: ${what} at ${((performance.now() - t0) / 1000).toFixed(2)} s\n`);
  };

  const stopDaemons = async () => {
    // radosgw first, then the OSD, then the monitor; all are throwaway, so no grace beyond a few seconds.
    for (const d of [...daemons].reverse()) await d.stop();
  };

  try {
    const keyring = join(dir, "keyring");
    await run(
      bins.cephAuthtool,
      ["--create-keyring", keyring, "--gen-key", "-n", "mon.", "--cap", "mon", "allow *"],
      {
        env,
      },
    );
    await run(
      bins.cephAuthtool,
      [keyring, "--gen-key", "-n", "client.admin", "--cap", "mon", "allow *", "--cap", "osd", "allow *"],
      { env },
    );
    const monmap = join(dir, "monmap");
    await run(
      bins.monmaptool,
      ["--create", "--addv", "a", `[v2:127.0.0.1:${monPort}]`, "--fsid", fsid, monmap],
      {
        env,
      },
    );
    await run(bins.cephMon, [...c, "--mkfs", "-i", "a", "--monmap", monmap, "--keyring", keyring], {
      env,
      logFiles: [log("mon.a.log")],
    });
    step("mon mkfs");
    const mon = startDaemon(bins.cephMon, [...c, "-f", "-i", "a"], {
      name: "ceph-mon",
      logFile: log("ceph-mon.out"),
      env,
      stopTimeoutMs: 5000,
    });
    daemons.push(mon);

    const osdUuid = randomUUID();
    const ceph = (args: string[], timeoutMs = 30_000) =>
      run(bins.ceph, [...c, "--connect-timeout", String(Math.ceil(timeoutMs / 1000)), ...args], {
        env,
        timeoutMs: timeoutMs + 5000,
        logFiles: [log("mon.a.log")],
      });
    await ceph(["osd", "new", osdUuid]); // -> osd.0
    step("mon up, osd.0 created");
    await run(bins.cephOsd, [...c, "-i", "0", "--mkfs", "--osd-uuid", osdUuid], {
      env,
      timeoutMs: 60_000,
      logFiles: [log("osd.0.log")],
    });
    const osd = startDaemon(bins.cephOsd, [...c, "-f", "-i", "0"], {
      name: "ceph-osd",
      logFile: log("ceph-osd.out"),
      env,
      stopTimeoutMs: 5000,
    });
    daemons.push(osd);
    await waitFor(
      "ceph-osd to be up",
      async () => {
        const { stdout } = await ceph(["osd", "stat", "--format", "json"], 10_000);
        return (JSON.parse(stdout) as { num_up_osds?: number }).num_up_osds === 1;
      },
      { timeoutMs: 90_000, intervalMs: 500, daemons: [mon, osd] },
    );
    step("osd up");

    const rgw = startDaemon(bins.radosgw, [...c, "-f", "-n", "client.rgw.a"], {
      name: "radosgw",
      logFile: log("radosgw.out"),
      env,
      stopTimeoutMs: 5000,
    });
    daemons.push(rgw);
    const endpoint = `http://127.0.0.1:${rgwPort}`;
    await waitFor(
      `radosgw on ${endpoint}`,
      async () => {
        const res = await fetch(endpoint, { signal: AbortSignal.timeout(2000) });
        await res.arrayBuffer();
        return true;
      },
      { timeoutMs: 120_000, intervalMs: 250, daemons: [mon, osd, rgw] },
    );
    step("radosgw answers");

    // prettier-ignore
    const userArgs = [
      "user", "create",
      "--uid", "capsule-test",
      "--display-name", "capsule test",
      "--access-key", S3_ACCESS_KEY,
      "--secret-key", S3_SECRET_KEY,
    ];
    await run(bins.radosgwAdmin, [...c, ...userArgs], {
      env,
      timeoutMs: 60_000,
      logFiles: [log("client.admin.log")],
    });
    step("user created");
    const info: S3Info = {
      endpoint,
      accessKeyId: S3_ACCESS_KEY,
      secretAccessKey: S3_SECRET_KEY,
      region: S3_REGION,
    };
    // The first bucket makes radosgw create its data pools (~2 s); pay for that here, not in a test's timing.
    await createBucket(info, "capsule-warmup");
    step("warm-up bucket created");
    return {
      ...info,
      cephConf: conf,
      dir,
      logDir,
      stop: async () => {
        await stopDaemons();
        await removeTempDir(dir);
      },
    };
  } catch (err) {
    await stopDaemons();
    keepTempDir(dir);
    const logFiles = err instanceof HarnessError ? [...err.logFiles] : [];
    const cephLogs: Record<string, string> = {
      "ceph-mon": "mon.a.log",
      "ceph-osd": "osd.0.log",
      radosgw: "client.rgw.a.log",
    };
    const last = daemons.at(-1);
    const lastLog = last && cephLogs[last.name] !== undefined ? log(cephLogs[last.name] ?? "") : undefined;
    if (lastLog !== undefined && !logFiles.includes(lastLog)) logFiles.push(lastLog);
    throw new HarnessError(`radosgw failed to start (files in ${dir}): ${(err as Error).message}`, {
      logFiles,
      cause: err,
    });
  }
}

/** A second radosgw of a running cluster, on its own port, that a test may kill and bring back. */
export interface ExtraRadosgw {
  readonly endpoint: string;
  /** False between kill() and restart(). */
  readonly running: boolean;
  /** kill -9: connections drop mid-request, as in a crash. */
  kill(): Promise<void>;
  /** Starts it again on the same port and resolves once it answers. */
  restart(): Promise<void>;
  /** Stops it for good. */
  stop(): Promise<void>;
}

/**
 * Starts another radosgw against the cluster of `cephConf` (the shared test cluster), so a test can take an S3
 * endpoint down without disturbing the other test files that use the shared one. Same users and buckets.
 */
export async function startExtraRadosgw(cephConf: string): Promise<ExtraRadosgw> {
  const radosgw = requireBinary("radosgw", "radosgw");
  const dir = makeTempDir("capsule-rgw-extra-");
  const [port = 0] = await freePorts(1);
  const name = `client.rgw.extra${port}`;
  const endpoint = `http://127.0.0.1:${port}`;
  const env: NodeJS.ProcessEnv = { ...process.env, CEPH_CONF: cephConf };
  // prettier-ignore
  const args = [
    "--conf", cephConf, "-f", "-n", name,
    "--rgw-frontends", `beast endpoint=127.0.0.1:${port}`,
    "--rgw-data", dir,
    "--log-file", join(dir, "radosgw.log"),
    "--admin-socket", join(dir, "radosgw.asok"),
    "--pid-file", join(dir, "radosgw.pid"),
  ];
  let daemon: Daemon | undefined;
  const start = async () => {
    const started = startDaemon(radosgw, args, {
      name: "radosgw (extra)",
      logFile: join(dir, "radosgw.out"),
      env,
      stopTimeoutMs: 5000,
    });
    daemon = started;
    await waitFor(
      `radosgw on ${endpoint}`,
      async () => {
        const res = await fetch(endpoint, { signal: AbortSignal.timeout(2000) });
        await res.arrayBuffer();
        return true;
      },
      { timeoutMs: 120_000, intervalMs: 100, daemons: [started] },
    );
  };
  const kill = async () => {
    const d = daemon;
    daemon = undefined;
    if (!d) return;
    process.kill(d.pid, "SIGKILL");
    // The daemon does not hold the event loop; this wait must, or a test with nothing else in flight ends here.
    const holding = setInterval(() => undefined, 1000);
    try {
      await d.exited;
    } finally {
      clearInterval(holding);
    }
    await d.stop();
  };
  await start();
  return {
    endpoint,
    get running() {
      return daemon !== undefined;
    },
    kill,
    restart: start,
    stop: async () => {
      await daemon?.stop();
      daemon = undefined;
      await removeTempDir(dir);
    },
  };
}
