import { Option } from "clipanion";
import { createLogger } from "../../log.js";
import { streamWalToStore } from "../../runtime/stream-wal.js";
import type { Report } from "../render.js";
import { flag, StoreVerb } from "./verb-command.js";

/**
 * `capsule <engine> --stream-wal`: the server's write-ahead log into the bucket under the target, until SIGTERM or
 * SIGINT (only engines that have one). Logs JSON lines on stderr like `capsule run`: it is meant to run for days.
 */
export class StreamWalVerb extends StoreVerb {
  static override summary =
    "Stream the write-ahead log into the bucket until stopped, for point-in-time recovery (runs until SIGTERM)";
  readonly verb = "stream-wal";
  streamWal = this.verbFlag();
  override target = Option.String("--target", {
    description: `Target the WAL is kept under (default: ${this.engine.usage.targetDefault})`,
  });
  override encryptTo = Option.Array("--encrypt-to", {
    description: "Encrypt the WAL to this age recipient (age1… public key; repeatable)",
  });
  override sse = flag.sse();
  override sseKmsKeyId = flag.sseKmsKeyId();
  // It runs until stopped and prints nothing to stdout.
  override output = "table" as const;

  protected async perform(): Promise<Report> {
    const conn = this.connect();
    const target = this.target ?? this.engine.defaultTarget(conn);
    this.engine.checkStreamWal?.(this.fields, target);
    const store = await this.store();
    const cluster = this.clusterId();
    const log = createLogger({
      write: (line) => this.context.stderr.write(`${line}\n`),
      base: { cluster, target, engine: this.engine.name },
    });
    const outcome = await streamWalToStore(store, this.engine, conn, {
      cluster,
      target,
      fields: this.fields,
      log,
    });
    this.note(outcome.line);
    return {};
  }
}
