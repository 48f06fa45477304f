/** Redis behind the engine seam (engines/engine.ts): RDB snapshots over the replication protocol, both ways. */
import { configError, targetFields, unverifiedTlsWarning } from "../connection-fields.js";
import { caFileFlag, serverFlags } from "../connection-flags.js";
import { flagsFor, type Engine, type Fields } from "../engine.js";
import { redisProfile } from "./profile.js";
import { backupRedis } from "./backup.js";
import { describeConnection, REDIS_SERVER, redisConnectionFrom, type RedisConnection } from "./connection.js";
import { drillRedis } from "./drill.js";
import { recoverRedis } from "./recover.js";
import { restoreRedis } from "./restore.js";

const CONNECTION = ["create", "restore", "recover"];

export const redis: Engine<RedisConnection> = {
  name: redisProfile.name,
  command: redisProfile.command,
  usage: {
    description: "Back up, list and restore Redis backups",
    targetDefault: "redis",
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
  },
  flags: [
    ...flagsFor(CONNECTION, [
      ...serverFlags(REDIS_SERVER),
      { field: "user", kind: "string", description: "ACL user (default: the default user)" },
      {
        field: "passwordEnv",
        kind: "string",
        description: "Read the password from this environment variable (default: REDISCLI_AUTH)",
      },
      {
        field: "tls",
        kind: "boolean",
        description:
          "Connect over TLS; the certificate and host name are verified (default: $REDIS_TLS=true)",
      },
      caFileFlag("caCert", "server", " (implies --tls)"),
      {
        field: "insecureSkipTlsVerify",
        kind: "boolean",
        description: "TLS without verifying the server's certificate (not recommended; implies --tls)",
      },
    ]),
    {
      field: "listenHost",
      kind: "string",
      modes: ["restore"],
      description:
        "Restore: address to serve the backup on (default: the address capsule reaches the target from)",
    },
    {
      field: "listenPort",
      kind: "string",
      modes: ["restore"],
      description: "Restore: port to serve the backup on (default: any)",
    },
    {
      field: "advertiseHost",
      kind: "string",
      modes: ["restore"],
      description: "Restore: address the target connects to (default: the listen address)",
    },
    {
      field: "detachReplica",
      kind: "boolean",
      modes: ["restore"],
      description: "Restore into a server that is a replica: it is detached from its master",
    },
  ],

  connect: redisConnectionFrom,
  connectTarget: (connection, env) => redisConnectionFrom(targetFields(connection), env),
  describe: describeConnection,
  insecureWarning: (conn) =>
    conn.tls?.insecure ? unverifiedTlsWarning(describeConnection(conn)) : undefined,

  defaultTarget: () => "redis",
  source: (conn) => ({ host: conn.host, port: conn.port }),
  backup: (conn, sink, _fields, context) => backupRedis(conn, sink, context),
  describeBackup(statefile) {
    const keys = (statefile.fingerprint as { keys?: number } | undefined)?.keys;
    return { summary: keys === undefined ? "" : `${keys} keys`, warnings: [] };
  },

  checkRestore: (fields) => void listenPortOf(fields),
  planRestore(conn, statefile, fields) {
    const listenPort = listenPortOf(fields);
    const to = describeConnection(conn);
    const id = statefile.backupId;
    const listenHost = fields["listenHost"] as string | undefined;
    const advertiseHost = fields["advertiseHost"] as string | undefined;
    return {
      to,
      question: `REPLACE every key of ${to} with backup ${id}?`,
      async run(source, context) {
        const outcome = await restoreRedis(conn, source, {
          ...context,
          ...(listenHost ? { listenHost } : {}),
          ...(listenPort !== undefined ? { listenPort } : {}),
          ...(advertiseHost ? { advertiseHost } : {}),
          detachReplica: fields["detachReplica"] === true,
        });
        return {
          lines: [
            `restored ${id} into ${to}: ${outcome.keys} keys` +
              (outcome.checked
                ? ", key counts match the backup"
                : " (the backup has no key counts to compare)"),
            ...(outcome.detachedFrom
              ? [
                  `the target was a replica of ${outcome.detachedFrom} and is now a master; point it back only if ` +
                    `you want its master's data instead of the backup's`,
                ]
              : []),
          ],
          document: outcome,
        };
      },
    };
  },

  drill: (source, _fields, _env, context) => drillRedis(source, context),
  recover: recoverRedis,
};

function listenPortOf(fields: Fields): number | undefined {
  const text = fields["listenPort"] as string | undefined;
  if (text === undefined) return undefined;
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw configError("listenPort", `{listenPort} must be a TCP port (got ${JSON.stringify(text)})`);
  }
  return port;
}
