import { Option, UsageError } from "clipanion";
import { checkDestination, downloadArtifact } from "../../runtime/download.js";
import { formatBytes, type Report } from "../render.js";
import { flag, StoreVerb } from "./verb-command.js";

/**
 * `capsule <engine> --download --id ID --to FILE`: the artifact, verified, as the engine's own tools read it (or as
 * stored, when the engine has no decoder or is told `--raw`).
 */
export class DownloadVerb extends StoreVerb {
  static override summary = "Download a backup's artifact to --to FILE";
  readonly verb = "download";
  download = this.verbFlag();
  override id = flag.id();
  to = Option.String("--to", { description: "Target file for --download" });
  force = flag.force();
  // Nothing goes to stdout: -o is not a flag of --download.
  override output = "table" as const;

  protected async perform(): Promise<Report> {
    if (!this.to) throw new UsageError("--download needs --to FILE");
    // Before any I/O: a destination that cannot be written is refused before a byte is fetched.
    checkDestination(this.to, "--to");
    const store = await this.store();
    const decoder = this.engine.downloadDecoder?.(this.fields);
    const bytes = await downloadArtifact(store, await this.entry(store), this.to, {
      ...(decoder ? { decode: decoder.decode } : {}),
      force: this.force,
      flag: "--to",
    });
    this.note(
      `downloaded ${formatBytes(bytes)} to ${this.to} (sha256 verified${decoder ? `; ${decoder.what}` : ""})`,
    );
    return {};
  }
}
