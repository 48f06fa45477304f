/** S3 allows at most 10,000 parts per multipart upload, each at least 5 MiB (except the last). */
export const MAX_PARTS = 10_000;
const MIB = 1024 * 1024;
/**
 * Memory of an upload is (concurrency + 1) × part size, a fixed pool (stream-parts.ts). 8 MiB × 3 measured on loopback
 * radosgw: as fast as 16 MiB × 4 and ~35 MB less peak RSS (bench/storage; docs/adr/0004).
 */
export const DEFAULT_PART_SIZE = 8 * MIB;
export const DEFAULT_UPLOAD_CONCURRENCY = 3;

/**
 * Picks a part size from the expected artifact size so the upload cannot hit the part cap (S3's 10,000 parts, or
 * another store's block cap). The estimate is doubled because database sizes guess the dump size only roughly (and
 * compression may fail to help).
 */
export function choosePartSize(sizeHint: number | undefined, maxParts: number = MAX_PARTS): number {
  if (!sizeHint || sizeHint <= 0) return DEFAULT_PART_SIZE;
  const needed = Math.ceil((sizeHint * 2) / (maxParts - 1));
  return Math.max(DEFAULT_PART_SIZE, Math.ceil(needed / MIB) * MIB);
}
