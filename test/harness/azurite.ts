/**
 * A throwaway Azurite (Microsoft's Azure Storage emulator, the npm package `azurite`), blob service only, on a free
 * loopback port with its workspace in a temporary directory, reached with the emulator's well-known account
 * (devstoreaccount1 and its published key — not a secret) through a connection string, as Azure Stack is.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { BlobServiceClient } from "@azure/storage-blob";
import { freePort } from "./ports.js";
import { HarnessError, keepTempDir, makeTempDir, removeTempDir, startDaemon, waitFor } from "./process.js";

/** The emulator's fixed account and key, published in Azurite's README. */
export const AZURITE_ACCOUNT = "devstoreaccount1";
export const AZURITE_KEY =
  "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

export interface AzureInfo {
  /** `http://127.0.0.1:<port>/devstoreaccount1` */
  blobEndpoint: string;
  account: string;
  key: string;
  connectionString: string;
}

export interface AzuriteServer extends AzureInfo {
  port: number;
  dir: string;
  logFile: string;
  stop(): Promise<void>;
  /** Stops the server (SIGTERM, so it saves its metadata) and keeps its workspace, for `startAzurite(reuse)`. */
  halt(): Promise<void>;
}

/** Azurite 3.37 needs Node 22 or newer; the harness runs it on the Node that runs the tests. */
const MIN_NODE_MAJOR = 22;

/**
 * Starts Azurite; with `reuse`, on the port and workspace of one stopped before (its data kept), as a store that
 * went away comes back.
 */
export async function startAzurite(reuse?: { port: number; dir: string }): Promise<AzuriteServer> {
  const major = Number(process.versions.node.split(".")[0]);
  if (major < MIN_NODE_MAJOR) {
    throw new HarnessError(
      `Azurite needs Node ${MIN_NODE_MAJOR}+, the tests run on ${process.version}: run them with Node 24`,
    );
  }
  const main = join(
    dirname(createRequire(import.meta.url).resolve("azurite/package.json")),
    "dist/src/blob/main.js",
  );
  const dir = reuse?.dir ?? makeTempDir("capsule-azurite-");
  const logFile = join(dir, "azurite.log");
  const port = reuse?.port ?? (await freePort());
  const daemon = startDaemon(
    process.execPath,
    [
      main,
      "--blobHost",
      "127.0.0.1",
      "--blobPort",
      String(port),
      "--location",
      dir,
      "--silent",
      "--disableTelemetry",
      // @azure/storage-blob speaks a newer service version than Azurite knows; the calls capsule makes exist in both.
      "--skipApiVersionCheck",
    ],
    { name: "azurite", logFile, cwd: dir, stopTimeoutMs: 5000 },
  );
  const blobEndpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  try {
    await waitFor(
      `azurite on 127.0.0.1:${port}`,
      async () => {
        // Any HTTP answer (400 for a bare GET) means it listens.
        const res = await fetch(blobEndpoint, { signal: AbortSignal.timeout(2000) });
        await res.arrayBuffer();
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 100, daemons: [daemon] },
    );
  } catch (err) {
    await daemon.stop();
    keepTempDir(dir);
    throw new HarnessError(`azurite failed to start (files in ${dir}): ${(err as Error).message}`, {
      logFiles: [logFile],
      cause: err,
    });
  }
  return {
    blobEndpoint,
    account: AZURITE_ACCOUNT,
    key: AZURITE_KEY,
    connectionString: azureConnectionStringFor(blobEndpoint, AZURITE_KEY),
    port,
    dir,
    logFile,
    stop: async () => {
      await daemon.stop();
      await removeTempDir(dir);
    },
    halt: () => daemon.stop(),
  };
}

/** A connection string for the emulator's account at `blobEndpoint`, signed with `key`. */
export function azureConnectionStringFor(blobEndpoint: string, key: string): string {
  return `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${key};BlobEndpoint=${blobEndpoint};`;
}

/** The environment that points capsule (and the Azure CLI) at the emulator. */
export function azureEnv(azure: AzureInfo): Record<string, string> {
  return { AZURE_STORAGE_CONNECTION_STRING: azure.connectionString };
}

/** Create a container (an existing one is fine), as an operator would before pointing capsule at it. */
export async function createContainer(azure: AzureInfo, name: string): Promise<void> {
  await BlobServiceClient.fromConnectionString(azure.connectionString)
    .getContainerClient(name)
    .createIfNotExists();
}
