/**
 * The peer of capsule's upload in bench/azure: stdin to one blob with the Azure SDK's own streaming upload
 * (`BlockBlobClient.uploadStream`, 8 MiB blocks, 3 in flight, as capsule's defaults), no hashing, no statefile.
 *   node bench/lib/azure-sdk-upload.js CONTAINER BLOB   (compiled by bench/lib/build.ts; AZURE_STORAGE_CONNECTION_STRING)
 */
import { BlobServiceClient } from "@azure/storage-blob";

const [container = "", blob = ""] = process.argv.slice(2);
const service = BlobServiceClient.fromConnectionString(process.env["AZURE_STORAGE_CONNECTION_STRING"] ?? "");
await service
  .getContainerClient(container)
  .getBlockBlobClient(blob)
  .uploadStream(process.stdin, 8 << 20, 3);
