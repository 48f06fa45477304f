import type { Report } from "../render.js";
import type { VerbCommand } from "./verb-command.js";

/**
 * `--create --in-cluster` and `--restore --in-cluster`: the work runs as a Job made from the target's CronJob (its
 * own bucket, connection and encryption); its log is followed here and its exit code is capsule's.
 */
export async function runInCluster(
  command: VerbCommand,
  run: {
    cluster: string | undefined;
    target: string | undefined;
    work: string[];
    note: (line: string) => void;
    confirm?: (where: string) => Promise<void>;
  },
): Promise<Report> {
  const { runInCluster: runJob } = await import("../../runtime/in-cluster.js");
  const env = command.context.env;
  const outcome = await runJob({
    engine: (command.constructor as typeof VerbCommand).engine.name,
    cluster: run.cluster ?? env["CAPSULE_CLUSTER"],
    target: run.target,
    work: run.work,
    env,
    logLine: (line) => command.context.stderr.write(`${line}\n`),
    note: run.note,
    ...(run.confirm && { beforeCreate: run.confirm }),
  });
  // The Job's own last line (a backup id, a restore's summary) is the result, whatever the format.
  const result = outcome.result;
  return { exitCode: outcome.exitCode, ...(result !== undefined && { table: result, document: result }) };
}
