/**
 * Which Azure sign-in an `azure://` bucket takes from the standard variables, in their order, the endpoint it
 * names, and that every secret it read is masked from then on. No server: nothing is contacted until a request.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { redact } from "../../src/redact.js";
import { AzureObjectStore } from "../../src/storage/azure-object-store.js";
import { openBucket, type S3Overrides } from "../../src/storage/open-store.js";

function open(env: Record<string, string>, overrides: S3Overrides = {}): AzureObjectStore {
  const { store, prefix } = openBucket("azure://backups/capsule/prod", overrides, env);
  assert.equal(prefix, "capsule/prod");
  assert.ok(store instanceof AzureObjectStore);
  return store;
}

const KEY = Buffer.from("an account key of sixty-four bytes, base64 as Azure gives it....").toString(
  "base64",
);
const SAS = "sv=2025-01-05&ss=b&srt=co&sp=rwdlac&se=2030-01-01T00:00:00Z&sig=c2lnbmF0dXJlLXNlY3JldA%3D%3D";

describe("azure:// settings from the environment", () => {
  test("GIVEN every variable WHEN opened THEN the connection string wins, and its BlobEndpoint is the endpoint", () => {
    const cs = `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${KEY};BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;`;
    const store = open({
      AZURE_STORAGE_CONNECTION_STRING: cs,
      AZURE_STORAGE_ACCOUNT: "other",
      AZURE_STORAGE_KEY: "another-key-value",
      AZURE_STORAGE_SAS_TOKEN: SAS,
    });
    assert.equal(store.signIn, "connection-string");
    assert.equal(store.description, "azure://backups at http://127.0.0.1:10000/devstoreaccount1");
    assert.equal(redact(`x ${KEY} y ${cs}`), "x *** y ***");
  });

  test("GIVEN an account with a key and a SAS token WHEN opened THEN the key is used, at the account's endpoint", () => {
    const store = open({
      AZURE_STORAGE_ACCOUNT: "acme",
      AZURE_STORAGE_KEY: KEY,
      AZURE_STORAGE_SAS_TOKEN: SAS,
    });
    assert.equal(store.signIn, "shared-key");
    assert.equal(store.description, "azure://backups at https://acme.blob.core.windows.net");
    assert.equal(redact(KEY), "***");
  });

  test("GIVEN an account with a SAS token WHEN opened THEN the token is used and masked, with or without its ?", () => {
    const store = open({ AZURE_STORAGE_ACCOUNT: "acme", AZURE_STORAGE_SAS_TOKEN: `?${SAS}` });
    assert.equal(store.signIn, "sas");
    assert.doesNotMatch(store.description, /sig=/);
    assert.equal(
      redact(`https://acme.blob.core.windows.net/?${SAS}`),
      "https://acme.blob.core.windows.net/?***",
    );
  });

  test("GIVEN an account alone WHEN opened THEN it signs in as the pod's identity; --endpoint overrides the endpoint", () => {
    const store = open(
      { AZURE_STORAGE_ACCOUNT: "acme" },
      { endpoint: "https://acme.blob.core.usgovcloudapi.net/" },
    );
    assert.equal(store.signIn, "identity");
    assert.equal(store.description, "azure://backups at https://acme.blob.core.usgovcloudapi.net");
  });

  test("GIVEN S3-only settings or an endpoint beside a connection string WHEN opened THEN one line says why", () => {
    assert.throws(
      () => open({ AZURE_STORAGE_ACCOUNT: "acme" }, { region: "eu-west-1" }),
      /region: only for s3:\/\//,
    );
    assert.throws(
      () =>
        open(
          { AZURE_STORAGE_CONNECTION_STRING: `AccountName=a;AccountKey=${KEY}` },
          { endpoint: "https://x.example" },
        ),
      /the endpoint comes from AZURE_STORAGE_CONNECTION_STRING's BlobEndpoint/,
    );
  });
});
