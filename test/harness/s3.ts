import { CreateBucketCommand, S3Client, S3ServiceException } from "@aws-sdk/client-s3";

export interface S3Info {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

/** An S3 client for the test server: path-style addressing, checksums only where the API requires them. */
export function s3Client(s3: S3Info): S3Client {
  return new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    forcePathStyle: true,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    maxAttempts: 3,
  });
}

/** Create a bucket; a bucket that already exists (and is ours) is fine. */
export async function createBucket(s3: S3Info, name: string): Promise<void> {
  const client = s3Client(s3);
  try {
    await client.send(new CreateBucketCommand({ Bucket: name }));
  } catch (err) {
    if (err instanceof S3ServiceException && err.name === "BucketAlreadyOwnedByYou") return;
    throw err;
  } finally {
    client.destroy();
  }
}

/** The environment variables that point the AWS SDK / CLI (and capsule) at the test server. */
export function s3Env(s3: S3Info): Record<string, string> {
  return {
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    AWS_REGION: s3.region,
  };
}
