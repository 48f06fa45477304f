/** Bucket requests as pure data: parsing, restore signatures, and the Job a request becomes. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Job } from "kubernetes-models/batch/v1/Job";
import { backupCronJobs, desiredState } from "../../src/reconciler/desired.js";
import { REQUEST_ENV } from "../../src/plan/run-contract.js";
import { requestJob } from "../../src/requests/job.js";
import { checkSignature, parseRequest, signRequest } from "../../src/requests/request.js";
import { cnvrgApp } from "../fakes/cnvrgapps.js";
import { layout } from "../../src/storage/layout.js";

const NOW = new Date("2026-06-01T12:00:00Z");

describe("bucket requests", () => {
  test("GIVEN request keys WHEN parsed THEN requests and outcomes are told apart and other keys ignored", () => {
    const p = (key: string) => layout.parseRequestKey("capsule", "c", key);
    assert.deepEqual(p("capsule/c/requests/req-1.json"), { id: "req-1", outcome: false });
    assert.deepEqual(p("capsule/c/requests/req-1.outcome.json"), { id: "req-1", outcome: true });
    assert.equal(p("capsule/c/requests/notes.txt"), undefined);
    assert.equal(p("capsule/c/requests/sub/x.json"), undefined);
    assert.equal(p("capsule/other/requests/req-1.json"), undefined);
  });

  const cases: Array<[string, unknown, RegExp | undefined]> = [
    [
      "a backup request",
      { action: "backup", target: "pg", requestedBy: "a", requestedAt: NOW.toISOString() },
      undefined,
    ],
    ["an array", [], /must be a JSON object/],
    [
      "an unknown action",
      { action: "drop", target: "pg", requestedBy: "a", requestedAt: "x" },
      /action must be/,
    ],
    [
      "a target with a slash",
      { action: "backup", target: "../x", requestedBy: "a", requestedAt: NOW.toISOString() },
      /target must be/,
    ],
    [
      "a control character",
      { action: "backup", target: "pg", requestedBy: "a\nb", requestedAt: NOW.toISOString() },
      /requestedBy must be/,
    ],
    [
      "a bad time",
      { action: "backup", target: "pg", requestedBy: "a", requestedAt: "yesterday" },
      /requestedAt must be/,
    ],
    [
      "an unsigned restore",
      {
        action: "restore",
        target: "pg",
        backupId: "postgresql-1",
        requestedBy: "a",
        requestedAt: NOW.toISOString(),
      },
      /signature must be/,
    ],
  ];
  for (const [name, body, problem] of cases) {
    test(`GIVEN ${name} WHEN parsed THEN ${problem ? "it is rejected with the field named" : "it is accepted"}`, () => {
      const parsed = parseRequest(JSON.stringify(body));
      if (!problem) assert.equal(parsed.ok, true);
      else {
        assert.equal(parsed.ok, false);
        assert.match(parsed.ok ? "" : parsed.reason, problem);
      }
    });
  }

  test("GIVEN a signed restore request WHEN checked THEN only the right key, cluster, id and a fresh time pass", () => {
    const body = {
      action: "restore" as const,
      target: "pg",
      backupId: "postgresql-x",
      requestedBy: "ops",
      requestedAt: NOW.toISOString(),
    };
    const request = { ...body, signature: signRequest("key", "c", "r1", body) };
    assert.equal(checkSignature("key", "c", "r1", request, NOW), undefined);
    assert.match(checkSignature("other", "c", "r1", request, NOW) ?? "", /does not match/);
    assert.match(checkSignature("key", "c2", "r1", request, NOW) ?? "", /does not match/);
    assert.match(checkSignature("key", "c", "r2", request, NOW) ?? "", /does not match/);
    assert.match(
      checkSignature("key", "c", "r1", request, new Date(NOW.getTime() + 2 * 3600_000)) ?? "",
      /outside the accepted window/,
    );
  });

  test("GIVEN a target's CronJob WHEN a request Job is made THEN it is a valid batch/v1 Job with the request's marks", () => {
    const cronJob = backupCronJobs(
      desiredState([cnvrgApp("cnvrg", "a-rather-long-application-name")], []).cronJobs,
    ).get("cnvrg.a-rather-long-application-name/postgresql");
    assert.ok(cronJob);
    const job = requestJob(cronJob, {
      cluster: "cnvrg.a-rather-long-application-name",
      requestId: "req-1",
      requestedBy: "bob",
    });
    new Job(job as never).validate();
    assert.ok(job.metadata.name.length <= 63);
    assert.equal(job.spec?.template.spec?.automountServiceAccountToken, false, "the pod stays locked down");
    const env = job.spec?.template.spec?.containers[0]?.env ?? [];
    const requestEnv = env.filter((e) => (Object.values(REQUEST_ENV) as string[]).includes(e.name));
    assert.deepEqual(
      requestEnv.map((e) => [e.name, e.value]),
      [
        [REQUEST_ENV.trigger, "request"],
        [REQUEST_ENV.requestId, "req-1"],
        [REQUEST_ENV.requestedBy, "bob"],
      ],
    );
    assert.ok(
      env.every((e) => e.value === undefined || !/secret|password/i.test(e.name)),
      "secrets stay secretKeyRefs",
    );
  });
});
