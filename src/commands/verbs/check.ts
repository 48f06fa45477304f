import { checkWal, sweepIntegrity, type Finding } from "../../storage/integrity.js";
import type { BackupEntry, BackupStore } from "../../storage/backup-store.js";
import { findingsTable, type Report } from "../render.js";
import { flag, StoreVerb } from "./verb-command.js";
import { profileOf } from "../../engines/registry.js";

/**
 * `capsule <engine> --check`: damage in the bucket (missing or resized artifacts, unreadable statefiles, orphans,
 * unfinished uploads; for PostgreSQL, gaps and other breaks in each target's streamed WAL) and what killed runs left on this machine or a server the flags name; `--yes` removes orphans,
 * unfinished uploads and leftovers.
 * Exits 1 while anything is left unresolved.
 */
export class CheckVerb extends StoreVerb {
  static override summary =
    "Find missing or resized artifacts, unreadable statefiles and orphans, and for PostgreSQL gaps in the streamed " +
    "WAL, a WAL head past the stored segments, timelines without history (exit 1 if any)";
  readonly verb = "check";
  check = this.verbFlag();
  override yes = flag.yes();

  protected async perform(): Promise<Report> {
    const store = await this.store();
    // One listing for both sweeps: at 100,000 backups each pass over the statefiles costs seconds.
    const { findings, entries } = await sweepIntegrity(store, this.clusterId(), this.engine.name);
    if (profileOf(this.engine.name).streamsWal) findings.push(...(await this.walFindings(store, entries)));
    const leftovers = await this.checkLeftovers();
    const orphans = findings.filter((f) => f.kind === "orphan");
    if (orphans.length > 0 && this.yes) {
      for (const o of orphans) await store.deleteOrphan(o.key);
      this.note(`deleted ${orphans.length} orphaned object(s)`);
    } else if (orphans.length > 0) {
      this.note(`${orphans.length} orphaned object(s); --check --yes deletes them`);
    }
    const uploads = new Set(findings.filter((f) => f.kind === "incomplete-upload").map((f) => f.backupId));
    if (uploads.size > 0 && this.yes) {
      let aborted = 0;
      for (const backupId of uploads)
        aborted += await store.abortIncompleteUploads({
          cluster: this.clusterId(),
          engine: this.engine.name,
          backupId,
        });
      this.note(`aborted ${aborted} incomplete upload(s)`);
    } else if (uploads.size > 0) {
      this.note(`incomplete uploads in ${uploads.size} backup(s); --check --yes aborts them`);
    }
    const cleaned = new Set(["orphan", "incomplete-upload"]);
    const unresolved = this.yes ? findings.filter((f) => !cleaned.has(f.kind)) : findings;
    return {
      document: findings,
      table: findings.length
        ? findingsTable(findings.map((f) => ({ ...f, backupId: f.backupId || `wal/${f.target}` })))
        : "no damage found",
      exitCode: unresolved.length + leftovers > 0 ? 1 : 0,
    };
  }

  /** The WAL sweep of every target with backups (storage/integrity.ts `checkWal`). */
  private async walFindings(store: BackupStore, entries: readonly BackupEntry[]): Promise<Finding[]> {
    const targets = [...new Set(entries.flatMap((e) => (e.statefile ? [e.statefile.target] : [])))].sort();
    const findings: Finding[] = [];
    for (const target of targets) {
      const own = entries.filter((e) => e.statefile?.target === target);
      findings.push(...(await checkWal(store, this.clusterId(), target, own)));
    }
    return findings;
  }

  /** What killed runs left, named on stderr (removed with `--yes`); resolves with how many are left. */
  private async checkLeftovers(): Promise<number> {
    let unresolved = 0;
    for (const leftover of (await this.engine.findLeftovers?.(this.fields, this.env)) ?? []) {
      if (this.yes) {
        await leftover.remove();
        this.note(leftover.removed);
      } else {
        this.note(leftover.found);
        unresolved++;
      }
    }
    return unresolved;
  }
}
