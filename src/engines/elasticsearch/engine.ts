/** Elasticsearch and OpenSearch behind the engine seam (engines/engine.ts): a logical NDJSON export, both ways. */
import { FieldError } from "../../domain/errors.js";
import { readCaFile, targetFields, unverifiedTlsWarning } from "../connection-fields.js";
import { caFileFlag } from "../connection-flags.js";
import { flagsFor, type Engine, type Fields } from "../engine.js";
import { elasticsearchProfile } from "./profile.js";
import { backupElasticsearch } from "./backup.js";
import { describeConnection, esConnectionFrom, portOf, type EsConnection } from "./connection.js";
import { drillElasticsearch } from "./drill.js";
import type { EsFingerprint } from "./fingerprint.js";
import { parsePatterns, parseRename, type Rename } from "./indices.js";
import { restoreElasticsearch } from "./restore.js";

const CONNECTION = ["create", "restore"];

export const elasticsearch: Engine<EsConnection> = {
  name: elasticsearchProfile.name,
  command: elasticsearchProfile.command,
  usage: {
    description: "Back up, list and restore Elasticsearch and OpenSearch backups",
    targetDefault: "elasticsearch",
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
  },
  flags: [
    ...flagsFor(CONNECTION, [
      {
        field: "url",
        kind: "string",
        description: "Cluster URL, without credentials (default: $ES_URL, else $ELASTICSEARCH_URL)",
      },
      caFileFlag("caCert", "cluster"),
    ]),
    {
      field: "insecureSkipTlsVerify",
      kind: "boolean",
      modes: [...CONNECTION, "verify --verify-url"],
      description: "Do not verify the cluster's TLS certificate (not recommended)",
    },
    {
      field: "indices",
      kind: "string",
      modes: ["create", "restore", "restore --in-cluster"],
      description:
        "Indices, comma-separated, wildcards allowed, -NAME excludes (default: all but system/hidden)",
    },
    {
      field: "replace",
      kind: "boolean",
      modes: ["restore", "restore --in-cluster"],
      description: "Restore: delete and recreate indices that already exist",
    },
    {
      field: "renamePattern",
      kind: "string",
      modes: ["restore"],
      description: "Restore: regular expression applied to each index name",
    },
    {
      field: "renameReplacement",
      kind: "string",
      modes: ["restore"],
      description: "Restore: replacement for --rename-pattern ($1… for groups)",
    },
    {
      field: "verifyUrl",
      kind: "string",
      modes: ["verify"],
      modifies: "verify",
      description:
        "--verify: also restore into this verification cluster (under capsule-verify-* names, deleted after)",
    },
  ],

  connect: (fields, env) =>
    esConnectionFrom(
      {
        url: fields["url"] as string | undefined,
        insecureSkipTlsVerify: fields["insecureSkipTlsVerify"] === true,
      },
      env,
      readCaFile("caCert", { value: fields["caCert"] as string | undefined, name: "{caCert}" }),
    ),
  connectTarget: (connection, env) => esConnectionFrom(targetFields(connection), env),
  describe: describeConnection,
  insecureWarning: (conn) =>
    conn.tls.insecure ? unverifiedTlsWarning(describeConnection(conn), "the credentials") : undefined,

  defaultTarget: () => "elasticsearch",
  source: (conn) => ({ host: conn.url.hostname, port: portOf(conn) }),
  checkBackup: (fields) => void parsePatterns(fields["indices"] as string | undefined),
  backup: (conn, sink, fields, context) =>
    backupElasticsearch(conn, sink, { ...context, indices: fields["indices"] as string | undefined }),
  describeBackup(statefile) {
    const fingerprint = statefile.fingerprint as EsFingerprint | undefined;
    return {
      summary: `${Object.keys(fingerprint?.indices ?? {}).length} indices, ${fingerprint?.docs ?? 0} documents`,
      warnings: Object.entries(fingerprint?.skipped ?? {}).map(
        ([index, why]) => `index ${index} was not backed up: ${why}`,
      ),
    };
  },

  checkRestore: (fields) => void restoreSelection(fields),
  planRestore(conn, statefile, fields) {
    const { indices, rename } = restoreSelection(fields);
    const replace = fields["replace"] === true;
    const to = describeConnection(conn);
    const id = statefile.backupId;
    const which = indices ? `indices ${indices} of` : "every index of";
    return {
      to,
      question: `Restore ${which} ${id} into ${to}${replace ? ", DELETING indices that exist" : ""}?`,
      async run(source, context) {
        const outcome = await restoreElasticsearch(conn, source, { ...context, indices, rename, replace });
        return {
          lines: [
            `restored ${id} into ${to}: ${outcome.indices.length} indices, ${outcome.docs} documents; document ` +
              `counts match the backup`,
            ...Object.entries(outcome.skippedAliases).map(
              ([index, aliases]) =>
                `aliases ${aliases.join(", ")} were not added to the renamed ${index} (they would also point at ` +
                `the original); add them with POST /_aliases if you want them`,
            ),
          ],
          document: outcome,
        };
      },
    };
  },

  drill: (source, fields, env, context) =>
    drillElasticsearch(source, {
      signal: context.signal,
      ...(fields["verifyUrl"] !== undefined ? { cluster: verificationCluster(fields, env) } : {}),
    }),
};

/** The cluster `verifyUrl` names, with the same credentials and TLS settings as the source. */
function verificationCluster(fields: Fields, env: NodeJS.ProcessEnv): EsConnection {
  try {
    return esConnectionFrom(
      { url: fields["verifyUrl"] as string, insecureSkipTlsVerify: fields["insecureSkipTlsVerify"] === true },
      env,
    );
  } catch (error) {
    if (error instanceof FieldError)
      throw new FieldError(error.code, "verifyUrl", `{verifyUrl}: ${error.template}`);
    throw error;
  }
}

/** The indices a restore takes and the names it gives them, checked. */
function restoreSelection(fields: Fields): { indices: string | undefined; rename: Rename | undefined } {
  const indices = fields["indices"] as string | undefined;
  parsePatterns(indices);
  const rename = parseRename(
    fields["renamePattern"] as string | undefined,
    fields["renameReplacement"] as string | undefined,
  );
  return { indices, rename };
}
