/**
 * The baseline of bench/gcs: stdin uploaded with @google-cloud/storage's plain `createWriteStream()` (its defaults:
 * one resumable session streamed in a single request, crc32c checked), what a user would write by hand. Talks to
 * STORAGE_EMULATOR_HOST as the client reads it.
 *   node bench/lib/gcs-plain-upload.js BUCKET OBJECT   (compiled by bench/lib/build.ts)
 */
import { pipeline } from "node:stream/promises";
import { Storage } from "@google-cloud/storage";

const [bucket, name] = process.argv.slice(2);
const file = new Storage().bucket(bucket!).file(name!);
await pipeline(process.stdin, file.createWriteStream());
console.log(`${name} ${String(file.metadata.size)}`);
