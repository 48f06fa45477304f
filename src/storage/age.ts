/**
 * The age adapter (docs/adr/0011): the only file that imports `age-encryption`. Streams in and out as Node
 * streams, bridged to the web streams the library speaks, with backpressure: a chunk is read from the source only
 * when the library asks for one, so memory stays flat whatever the artifact's size.
 */
import { Readable } from "node:stream";
import { loadOnUse } from "../util/load-on-use.js";

const age = loadOnUse<typeof import("age-encryption")>("age-encryption");

/** `null` when the string is an age recipient (a public key) the library can encrypt to, else why not. */
export function recipientProblem(recipient: string): string | null {
  try {
    new (age().Encrypter)().addRecipient(recipient);
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

/** The recipient (public key) of an identity, or `undefined` if the string is not an age identity. */
export async function recipientOfIdentity(identity: string): Promise<string | undefined> {
  try {
    return await age().identityToRecipient(identity);
  } catch {
    return undefined;
  }
}

/** The plaintext stream, encrypted to every recipient. */
export async function encryptStream(plaintext: Readable, recipients: readonly string[]): Promise<Readable> {
  const encrypter = new (age().Encrypter)();
  for (const recipient of recipients) encrypter.addRecipient(recipient);
  const source = toWeb(plaintext);
  return fromWeb(await encrypter.encrypt(source.stream), source);
}

/**
 * The ciphertext stream, decrypted. Rejects before any plaintext flows when no identity opens the header; a
 * chunk that fails authentication later fails the stream there. Failures of the library (not of the input) are
 * passed through `onFailure` so the caller can name the backup.
 */
export async function decryptStream(
  ciphertext: Readable,
  identities: readonly string[],
  onFailure: (message: string) => Error,
): Promise<Readable> {
  const decrypter = new (age().Decrypter)();
  for (const identity of identities) decrypter.addIdentity(identity);
  const source = toWeb(ciphertext);
  let plaintext: ReadableStream<Uint8Array>;
  try {
    plaintext = await decrypter.decrypt(source.stream);
  } catch (error) {
    ciphertext.destroy();
    throw source.failure() ?? onFailure((error as Error).message);
  }
  return fromWeb(plaintext, source, onFailure);
}

interface WebSource {
  readonly stream: ReadableStream<Uint8Array>;
  /** The input's own error, if it failed: reported as it is rather than as a decryption failure. */
  failure(): Error | undefined;
}

/** A pull-based web stream over a Node stream (highWaterMark 0: nothing is read ahead of the consumer). */
function toWeb(input: Readable): WebSource {
  const iterator = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let failed: Error | undefined;
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const next = await iterator.next();
          if (next.done) controller.close();
          else
            controller.enqueue(new Uint8Array(next.value.buffer, next.value.byteOffset, next.value.length));
        } catch (error) {
          failed = error as Error;
          controller.error(error);
        }
      },
      async cancel() {
        await iterator.return?.();
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, failure: () => failed };
}

/** A Node stream over a web stream, reading one chunk per `_read`. */
function fromWeb(
  web: ReadableStream<Uint8Array>,
  source: WebSource,
  onFailure?: (message: string) => Error,
): Readable {
  const reader = web.getReader();
  return new Readable({
    read() {
      reader.read().then(
        ({ done, value }) =>
          this.push(done ? null : Buffer.from(value.buffer, value.byteOffset, value.length)),
        (error: unknown) => {
          const inputError = source.failure();
          this.destroy(inputError ?? (onFailure ? onFailure((error as Error).message) : (error as Error)));
        },
      );
    },
    destroy(error, callback) {
      reader.cancel().catch(() => undefined);
      callback(error);
    },
  });
}
