/** Where a compiled target's server is, as its plan says (the secrets stay in the pod's environment). */
export interface TargetConnection {
  /** Service name or host; for PostgreSQL, unset means the credentials Secret's `host` key. */
  readonly host?: string;
  readonly port: number;
  /** PostgreSQL database; unset means the credentials Secret's `database` key. */
  readonly database?: string;
  /** Elasticsearch base URL; @default `http://<host>:<port>`. */
  readonly url?: string;
}
