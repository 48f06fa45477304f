/**
 * Client-side encryption settings from the boundary (docs/adr/0011): recipients (public keys) from flags or the
 * plan, checked once here; the identity (the secret key) only from the environment — `CAPSULE_AGE_IDENTITY`, or a
 * file named by `CAPSULE_AGE_IDENTITY_FILE` (a mounted Secret) — never from a flag, so it never sits in argv, shell
 * history or a CronJob's args. The identity is registered for redaction the moment it is read.
 */
import { readFile } from "node:fs/promises";
import { CapsuleError, ErrorCode } from "../domain/errors.js";
import { AGE_ENV } from "../plan/run-contract.js";
import { registerSecret } from "../redact.js";
import { recipientProblem } from "../storage/age.js";
import type { IdentitySource } from "../storage/backup-store.js";

/** The recipients, checked: each must be an age public key (`age1…`). `field` names the flag or plan field. */
export function checkRecipients(recipients: readonly string[], field: string): string[] {
  return recipients.map((recipient, i) => {
    const problem = recipient.startsWith("age1") ? recipientProblem(recipient) : "not an age1… public key";
    if (problem !== null) {
      // An identity pasted here by mistake is a secret: say so without echoing it.
      const shown = /^AGE-SECRET-KEY-/i.test(recipient)
        ? "an identity (secret key); give its public key"
        : `${JSON.stringify(recipient.slice(0, 20))}…: ${problem}`;
      throw new CapsuleError(ErrorCode.Config, `${field}[${i}] is not an age recipient (${shown})`);
    }
    return recipient;
  });
}

/** The identities the environment provides, read when an encrypted artifact is opened. */
export function identitiesFromEnv(env: NodeJS.ProcessEnv): IdentitySource {
  const inline = env[AGE_ENV.identity];
  const file = env[AGE_ENV.identityFile];
  registerSecret(inline);
  return {
    description: inline || !file ? AGE_ENV.identity : `${AGE_ENV.identityFile} (${file})`,
    async load() {
      if (inline) return parseIdentities(inline);
      if (!file) return [];
      let text: string;
      try {
        text = await readFile(file, "utf8");
      } catch (error) {
        throw new CapsuleError(
          ErrorCode.Config,
          `${AGE_ENV.identityFile}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? "error"})`,
        );
      }
      return parseIdentities(text);
    },
  };
}

/** An identity file as age-keygen writes it: comments and blank lines, one `AGE-SECRET-KEY-…` per line. */
function parseIdentities(text: string): string[] {
  const identities = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
  for (const identity of identities) registerSecret(identity);
  return identities;
}
