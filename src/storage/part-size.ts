/** S3 allows at most 10,000 parts per multipart upload, each at least 5 MiB (except the last). */
export const MAX_PARTS = 10_000;
const MIB = 1024 * 1024;
/** Small enough to keep memory flat (queue × part), large enough to keep per-request overhead low. */
export const DEFAULT_PART_SIZE = 16 * MIB;

/**
 * Picks a part size from the expected artifact size so the upload cannot hit the part cap. The estimate is
 * doubled because database sizes guess the dump size only roughly (and compression may fail to help).
 */
export function choosePartSize(sizeHint: number | undefined): number {
  if (!sizeHint || sizeHint <= 0) return DEFAULT_PART_SIZE;
  const needed = Math.ceil((sizeHint * 2) / (MAX_PARTS - 1));
  return Math.max(DEFAULT_PART_SIZE, Math.ceil(needed / MIB) * MIB);
}
