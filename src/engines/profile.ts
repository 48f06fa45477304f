/**
 * What the planner, the scanner and the compiler know about an engine, as plain data: its CnvrgApp block and
 * defaults (docs/design.md §3), what a plan's connection may say for it, and the environment its backup pod is given.
 * Kept apart from `Engine` (engine.ts) so that `capsule plan` never loads an engine's runtime code; the pod side of
 * the same contract is the engine's `connectTarget`, which reads the variables named here.
 */
import type { EngineName } from "../domain/backup.js";
import type { TargetConnection } from "../domain/connection.js";

/** Which key of a target's credentials Secret holds what. */
export type CredentialRole = "host" | "database" | "user" | "password";

/** Connection fields some engines take and others refuse; host and port every engine takes. */
export const ENGINE_CONNECTION_FIELDS = ["database", "url"] as const;
export type EngineConnectionField = (typeof ENGINE_CONNECTION_FIELDS)[number];

/**
 * One variable of the pod's environment, in a form the compiler turns into a `V1EnvVar`. A value read from the
 * credentials Secret only ever travels as a `secretKeyRef`, so no secret reaches the compiled YAML.
 */
export type PodEnvVar =
  /**
   * A connection field's value as text; when the plan leaves it unset, `fallback` with each `{field}` replaced by
   * that connection field (unset fields as ""), or "" without a fallback.
   */
  | { readonly name: string; readonly field: keyof TargetConnection; readonly fallback?: string }
  /** The connection field's value when the plan gives one, else the credentials Secret's key for `orSecret`. */
  | { readonly name: string; readonly field: keyof TargetConnection; readonly orSecret: CredentialRole }
  /** The credentials Secret's key for `secret`. */
  | { readonly name: string; readonly secret: CredentialRole };

export interface EngineProfile {
  readonly name: EngineName;
  /** The CLI's word for it (`capsule pg`): the registry finds the engine a command line names without loading any. */
  readonly command: string;
  /**
   * It keeps a log archive beside its backups (PostgreSQL's WAL, docs/adr/0021): a plan may ask for `pitr`, and
   * retention, the integrity sweep and the status API look after the archive.
   */
  readonly streamsWal: boolean;
  /** `spec.dbs.<key>` in a CnvrgApp. */
  readonly cnvrgKey: string;
  /** The CnvrgApp's defaults for its service, port and credentials Secret. */
  readonly svcName: string;
  readonly port: number;
  readonly credsSecret: string;
  /** Which keys of the credentials Secret hold what; roles the engine does not use are absent. */
  readonly credentialKeys: Readonly<Partial<Record<CredentialRole, string>>>;
  /** The connection fields beside host and port a plan may give; the others are refused for this engine. */
  readonly connectionFields: readonly EngineConnectionField[];
  /** The credentials Secret can name the host, so a plan may leave both `host` and `url` out. */
  readonly hostInSecret: boolean;
  /** The pod's engine variables, in the order the compiled YAML lists them (byte-stable output). */
  readonly podEnv: readonly PodEnvVar[];
}
