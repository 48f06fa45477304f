import { Command, Option, UsageError } from "clipanion";
import { backupRedis } from "../engines/redis/backup.js";
import {
  describeConnection,
  redisConnectionFrom,
  type RedisConnection,
} from "../engines/redis/connection.js";
import { recoverRedis } from "../engines/redis/recover.js";
import { restoreRedis } from "../engines/redis/restore.js";
import { drillRedis } from "../engines/redis/drill.js";
import type { DrillResult } from "../runtime/verify.js";
import type { BackupEntry, BackupStore } from "../storage/backup-store.js";
import { usageErrorOf } from "./base-command.js";
import { EngineCommand } from "./engine-command.js";
import { formatBytes, render } from "./render.js";

export class RedisCommand extends EngineCommand {
  static override paths = [["redis"]];
  static override usage = Command.Usage({
    description: "Back up, list and restore Redis backups",
    details: `
      A backup is the server's RDB snapshot, taken over the replication protocol (like redis-cli --rdb) and checked
      (header, CRC-64, key counts per database) while it streams to the bucket. The password is read from
      REDISCLI_AUTH, or from the variable named by --password-env; --user selects an ACL user.

      A restore needs no access to the server's files: capsule serves the backup as a replication master and
      points the target at itself (REPLICAOF), so the target must be able to reach capsule over TCP (see the
      flags --listen-host and --advertise-host). ALL keys on the target are replaced by the backup's. Key counts are
      compared with the backup before the target is detached (REPLICAOF NO ONE); on any failure its replication
      settings are put back.

      Interrupted, a restore leaves exactly the target's old keys or exactly the backup's, never a mix: the target
      drops its keys only once it holds the whole, checksum-verified RDB. SIGINT or SIGTERM puts its replication
      settings back (master or replica, masterauth, masteruser), records the restore as interrupted and exits 130 or
      143 with one line saying whose data the target holds. A killed capsule (SIGKILL) leaves the target a
      read-only replica of capsule's vanished listener; the next capsule redis command against it says so, and the
      flag --recover puts it back. The settings to put back are kept on the target itself (its masteruser setting,
      which holds no secret), never in the bucket.
    `,
    examples: [
      [
        "Back up a server",
        "REDISCLI_AUTH=… capsule redis --create --host redis --bucket s3://backups/capsule",
      ],
      ["List backups", "capsule redis --list --bucket s3://backups/capsule"],
      [
        "Restore (replaces all keys)",
        "capsule redis --restore --id ID --host redis --bucket s3://backups/capsule",
      ],
      ["Put back a server left a replica by a killed restore", "capsule redis --recover --host redis"],
      ["Download a dump.rdb", "capsule redis --download --id ID --to dump.rdb --bucket s3://backups/capsule"],
    ],
  });
  readonly engine = "redis" as const;

  host = Option.String("--host", { description: "Server host (default: $REDIS_HOST, else 127.0.0.1)" });
  port = Option.String("--port", { description: "Server port (default: $REDIS_PORT, else 6379)" });
  user = Option.String("--user", { description: "ACL user (default: the default user)" });
  passwordEnv = Option.String("--password-env", {
    description: "Read the password from this environment variable (default: REDISCLI_AUTH)",
  });
  target = Option.String("--target", { description: "Target name recorded in the backup (default: redis)" });
  tls = Option.Boolean("--tls", false, {
    description: "Connect over TLS; the certificate and host name are verified (default: $REDIS_TLS=true)",
  });
  caCert = Option.String("--ca-cert", {
    description: "PEM file with the CA that signed the server's certificate (implies --tls)",
  });
  insecureSkipTlsVerify = Option.Boolean("--insecure-skip-tls-verify", false, {
    description: "TLS without verifying the server's certificate (not recommended; implies --tls)",
  });
  listenHost = Option.String("--listen-host", {
    description:
      "Restore: address to serve the backup on (default: the address capsule reaches the target from)",
  });
  listenPort = Option.String("--listen-port", {
    description: "Restore: port to serve the backup on (default: any)",
  });
  advertiseHost = Option.String("--advertise-host", {
    description: "Restore: address the target connects to (default: the listen address)",
  });
  detachReplica = Option.Boolean("--detach-replica", false, {
    description: "Restore into a server that is a replica: it is detached from its master",
  });
  recover = Option.Boolean("--recover", false, {
    description:
      "Put back a server that a killed restore left a read-only replica of capsule (its settings as before)",
  });

  protected override async runCreate(): Promise<void> {
    const conn = this.connection();
    const statefile = await this.createBackup(
      this.target ?? "redis",
      { host: conn.host, port: conn.port },
      (run, context) => backupRedis(conn, run, context),
    );
    const keys = (statefile.fingerprint as { keys?: number } | undefined)?.keys;
    this.note(
      `backed up ${describeConnection(conn)}: ${formatBytes(statefile.artifact?.sizeBytes ?? 0)}` +
        `${keys === undefined ? "" : `, ${keys} keys`} as ${statefile.backupId}\n`,
    );
  }

  protected override async runRestore(): Promise<void> {
    const conn = this.connection();
    const listenPort = this.listenPort === undefined ? undefined : Number(this.listenPort);
    if (listenPort !== undefined && (!Number.isInteger(listenPort) || listenPort < 0 || listenPort > 65535)) {
      throw new UsageError(`--listen-port must be a TCP port (got ${JSON.stringify(this.listenPort)})`);
    }
    const where = describeConnection(conn);
    const store = await this.store();
    const entry = await this.restorableEntry(
      store,
      (e) => `REPLACE every key of ${where} with backup ${e.ref.backupId}?`,
    );
    const outcome = await this.recordingRestore(store, entry, where, (signal) =>
      restoreRedis(conn, store.artifactSource(entry), {
        signal,
        ...(this.listenHost ? { listenHost: this.listenHost } : {}),
        ...(listenPort !== undefined ? { listenPort } : {}),
        ...(this.advertiseHost ? { advertiseHost: this.advertiseHost } : {}),
        detachReplica: this.detachReplica,
        onPhase: (phase) => this.note(`${phase}…\n`),
      }),
    );
    this.note(
      `restored ${entry.ref.backupId} into ${where}: ${outcome.keys} keys` +
        (outcome.checked
          ? ", key counts match the backup\n"
          : " (the backup has no key counts to compare)\n"),
    );
    if (outcome.detachedFrom) {
      this.note(
        `the target was a replica of ${outcome.detachedFrom} and is now a master; point it back only if you ` +
          `want its master's data instead of the backup's\n`,
      );
    }
    if (this.output !== "table") this.print(render(this.output, outcome));
  }

  protected override drill(
    store: BackupStore,
    entry: BackupEntry,
    signal: AbortSignal,
  ): Promise<DrillResult> {
    return drillRedis(store.artifactSource(entry), { onPhase: (phase) => this.note(`${phase}…\n`), signal });
  }

  protected override async runRecover(): Promise<void> {
    this.note(`${await recoverRedis(this.connection(), { onPhase: (phase) => this.note(`${phase}…\n`) })}\n`);
  }

  private connection(): RedisConnection {
    let conn: RedisConnection;
    try {
      conn = redisConnectionFrom(this, this.env);
    } catch (error) {
      throw usageErrorOf(error);
    }
    if (conn.tls?.insecure) {
      this.note(
        `warning: --insecure-skip-tls-verify: the certificate of ${describeConnection(conn)} is not checked; ` +
          `anyone on the path can read the password and the data\n`,
      );
    }
    return conn;
  }
}
