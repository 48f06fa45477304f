import { readFileSync } from "node:fs";
import { Command, Option, UsageError } from "clipanion";
import { backupElasticsearch } from "../engines/elasticsearch/backup.js";
import {
  describeConnection,
  esConnectionFrom,
  type EsConnection,
} from "../engines/elasticsearch/connection.js";
import type { EsFingerprint } from "../engines/elasticsearch/fingerprint.js";
import { parsePatterns, parseRename, type Rename } from "../engines/elasticsearch/indices.js";
import { restoreElasticsearch } from "../engines/elasticsearch/restore.js";
import { messageOf } from "../domain/errors.js";
import { drillElasticsearch } from "../engines/elasticsearch/drill.js";
import type { DrillResult } from "../runtime/verify.js";
import type { BackupEntry, BackupStore } from "../storage/backup-store.js";
import { usageErrorOf } from "./base-command.js";
import { EngineCommand } from "./engine-command.js";
import { formatBytes, render } from "./render.js";

export class EsCommand extends EngineCommand {
  static override paths = [["es"]];
  static override usage = Command.Usage({
    description: "Back up, list and restore Elasticsearch and OpenSearch backups",
    details: `
      A backup is a logical export — settings, mappings, aliases and every document of the chosen indices — as one
      gzipped NDJSON file (indices.ndjson.gz), read through a point in time (Elasticsearch 7.12+) or a scroll
      (older servers, OpenSearch). It needs no snapshot repository and restores into any Elasticsearch 7/8 or
      OpenSearch. System indices (".…") and hidden indices are left out unless named.

      The cluster is --url, else $ES_URL, else $ELASTICSEARCH_URL. Credentials come only from the environment:
      ES_USER and ES_PASSWORD (or CNVRG_ES_USER and CNVRG_ES_PASS), or ES_API_KEY. TLS is verified; --ca-cert FILE
      names the cluster's CA.

      A restore never overwrites an existing index unless --replace (delete and recreate), or restores under new
      names with --rename-pattern/--rename-replacement (aliases are then not restored). Document counts are
      compared with the backup's before an index's aliases are added.
    `,
    examples: [
      [
        "Back up all indices",
        "ES_USER=elastic ES_PASSWORD=… capsule es --create --url https://es:9200 --bucket s3://backups/capsule",
      ],
      ["List backups", "capsule es --list --bucket s3://backups/capsule"],
      [
        "Restore two indices under new names",
        "capsule es --restore --id ID --indices logs,metrics --rename-pattern '^' --rename-replacement restored- --url https://es:9200",
      ],
      [
        "Download the export",
        "capsule es --download --id ID --to indices.ndjson.gz --bucket s3://backups/capsule",
      ],
    ],
  });
  readonly engine = "elasticsearch" as const;

  url = Option.String("--url", {
    description: "Cluster URL, without credentials (default: $ES_URL, else $ELASTICSEARCH_URL)",
  });
  indices = Option.String("--indices", {
    description:
      "Indices, comma-separated, wildcards allowed, -NAME excludes (default: all but system/hidden)",
  });
  target = Option.String("--target", {
    description: "Target name recorded in the backup (default: elasticsearch)",
  });
  caCert = Option.String("--ca-cert", {
    description: "PEM file with the CA that signed the cluster's certificate",
  });
  insecureSkipTlsVerify = Option.Boolean("--insecure-skip-tls-verify", false, {
    description: "Do not verify the cluster's TLS certificate (not recommended)",
  });
  replace = Option.Boolean("--replace", false, {
    description: "Restore: delete and recreate indices that already exist",
  });
  renamePattern = Option.String("--rename-pattern", {
    description: "Restore: regular expression applied to each index name",
  });
  renameReplacement = Option.String("--rename-replacement", {
    description: "Restore: replacement for --rename-pattern ($1… for groups)",
  });
  verifyUrl = Option.String("--verify-url", {
    description:
      "--verify: also restore into this verification cluster (under capsule-verify-* names, deleted after)",
  });

  protected override async runCreate(): Promise<void> {
    const conn = this.connection();
    this.validateIndices();
    const statefile = await this.createBackup(
      this.target ?? "elasticsearch",
      { host: conn.url.hostname, port: portOf(conn) },
      (run, context) =>
        backupElasticsearch(conn, run, {
          ...context,
          ...(this.indices !== undefined ? { indices: this.indices } : {}),
        }),
    );
    const fingerprint = statefile.fingerprint as EsFingerprint | undefined;
    const indices = Object.keys(fingerprint?.indices ?? {}).length;
    this.note(
      `backed up ${describeConnection(conn)}: ${indices} indices, ${fingerprint?.docs ?? 0} documents, ` +
        `${formatBytes(statefile.artifact?.sizeBytes ?? 0)} as ${statefile.backupId}\n`,
    );
    for (const [index, why] of Object.entries(fingerprint?.skipped ?? {})) {
      this.note(`warning: index ${index} was not backed up: ${why}\n`);
    }
  }

  protected override inClusterRestoreFlags(): string[] {
    this.validateIndices();
    return [
      ...(this.replace ? ["--replace"] : []),
      ...(this.indices !== undefined ? ["--indices", this.indices] : []),
    ];
  }

  protected override async runRestore(): Promise<void> {
    const conn = this.connection();
    this.validateIndices();
    const rename = this.rename();
    const where = describeConnection(conn);
    const which = this.indices ? `indices ${this.indices} of` : "every index of";
    const store = await this.store();
    const entry = await this.restorableEntry(
      store,
      (e) =>
        `Restore ${which} ${e.ref.backupId} into ${where}${this.replace ? ", DELETING indices that exist" : ""}?`,
    );
    const outcome = await this.recordingRestore(store, entry, where, (signal) =>
      restoreElasticsearch(conn, store.artifactSource(entry), {
        signal,
        ...(this.indices !== undefined ? { indices: this.indices } : {}),
        ...(rename ? { rename } : {}),
        replace: this.replace,
        onPhase: (phase) => this.note(`${phase}…\n`),
      }),
    );
    this.note(
      `restored ${entry.ref.backupId} into ${where}: ${outcome.indices.length} indices, ${outcome.docs} ` +
        `documents; document counts match the backup\n`,
    );
    for (const [index, aliases] of Object.entries(outcome.skippedAliases)) {
      this.note(
        `aliases ${aliases.join(", ")} were not added to the renamed ${index} (they would also point at the ` +
          `original); add them with POST /_aliases if you want them\n`,
      );
    }
    if (this.output !== "table") this.print(render(this.output, outcome));
  }

  protected override drill(
    store: BackupStore,
    entry: BackupEntry,
    signal: AbortSignal,
  ): Promise<DrillResult> {
    return drillElasticsearch(store.artifactSource(entry), {
      signal,
      ...(this.verifyUrl ? { cluster: this.verificationCluster(this.verifyUrl) } : {}),
    });
  }

  /** The cluster `--verify-url` names, with the same credentials and TLS settings as the source. */
  private verificationCluster(url: string): EsConnection {
    try {
      return esConnectionFrom({ url, insecureSkipTlsVerify: this.insecureSkipTlsVerify }, this.env);
    } catch (error) {
      throw new UsageError(`--verify-url: ${usageErrorOf(error).message}`);
    }
  }

  private connection(): EsConnection {
    let ca: string | undefined;
    if (this.caCert) {
      try {
        ca = readFileSync(this.caCert, "utf8");
      } catch (error) {
        throw new UsageError(
          `--ca-cert ${this.caCert}: ${(error as NodeJS.ErrnoException).code ?? messageOf(error)}`,
        );
      }
    }
    let conn: EsConnection;
    try {
      conn = esConnectionFrom(this, this.env, ca);
    } catch (error) {
      throw usageErrorOf(error);
    }
    if (conn.tls.insecure) {
      this.note(
        `warning: --insecure-skip-tls-verify: the certificate of ${describeConnection(conn)} is not checked; ` +
          `anyone on the path can read the credentials and the data\n`,
      );
    }
    return conn;
  }

  private validateIndices(): void {
    try {
      parsePatterns(this.indices);
    } catch (error) {
      throw usageErrorOf(error);
    }
  }

  private rename(): Rename | undefined {
    try {
      return parseRename(this.renamePattern, this.renameReplacement);
    } catch (error) {
      throw usageErrorOf(error);
    }
  }
}

function portOf(conn: EsConnection): number {
  return Number(conn.url.port || (conn.url.protocol === "https:" ? 443 : 80));
}
