import { Option } from "clipanion";
import { backupToVerify, verifyWithEngine } from "../../runtime/verify.js";
import type { Report } from "../render.js";
import { flag, StoreVerb } from "./verb-command.js";

/** `capsule <engine> --verify --id ID|latest`: the checksum, then the engine's restore drill, recorded in the statefile. */
export class VerifyVerb extends StoreVerb {
  static override summary =
    "Prove a backup (--id ID or latest): checksum, then a restore drill into a scratch target";
  readonly verb = "verify";
  verify = this.verbFlag();
  override id = flag.id();
  override target = Option.String("--target", {
    description: "With --id latest: the target's latest backup",
  });
  override sse = flag.sse();
  override sseKmsKeyId = flag.sseKmsKeyId();

  protected async perform(): Promise<Report> {
    const store = await this.store();
    const entry = await backupToVerify(
      store,
      { ...this.scope(), ...(this.target ? { target: this.target } : {}) },
      this.requireId(),
    );
    const verification = await verifyWithEngine(store, entry, this.engine, this.fields, this.env, {
      notice: (line) => this.note(line),
      onPhase: this.phase,
    });
    this.note(`verified ${entry.ref.backupId}: ${verification.details} (${verification.method})`);
    return {
      document: { backupId: entry.ref.backupId, verification },
      table: entry.ref.backupId,
    };
  }
}
