/**
 * Each failure the server documents, provoked for real and read back through
 * ModelRouterError: the gRPC code and every google.rpc detail type of the
 * grpc-status-details-bin trailer, decoded with the protos shipped in proto/.
 */
import assert from "node:assert/strict";
import { connect } from "node:http2";
import { after, before, test } from "node:test";

import {
  ERROR_DOMAIN,
  ModelRouterClient,
  ModelRouterError,
} from "../src/index.js";
import { ACME_KEY, BROKE_KEY, type RunningServer, startServer } from "./server.js";

let server: RunningServer;
let client: ModelRouterClient;

before(async () => {
  server = await startServer();
  client = server.client;
});

after(async () => {
  await server?.stop();
});

/** The ModelRouterError a call rejects with (fails the test if it resolves). */
async function failure(call: Promise<unknown> | AsyncIterable<unknown>): Promise<ModelRouterError> {
  try {
    if (Symbol.asyncIterator in call) {
      for await (const _ of call) {
        // drain
      }
    } else {
      await call;
    }
  } catch (error) {
    assert.ok(error instanceof ModelRouterError, `not a ModelRouterError: ${String(error)}`);
    return error;
  }
  assert.fail("the call succeeded");
}

function assertErrorInfo(error: ModelRouterError, reason: string): void {
  assert.equal(error.details.errorInfo?.domain, ERROR_DOMAIN);
  assert.equal(error.reason, reason);
}

test("an invalid request is INVALID_ARGUMENT with a BadRequest violation per field", async () => {
  const error = await failure(client.route("hi", { minQuality: 3, maxCostUsd: -1 }));
  assert.equal(error.codeName, "INVALID_ARGUMENT");
  assert.equal(error.code, 3);
  const fields = error.details.badRequest?.fieldViolations.map((v) => v.field).sort();
  assert.deepEqual(fields, ["constraints.max_cost_usd", "constraints.min_quality"]);
  for (const violation of error.details.badRequest?.fieldViolations ?? []) {
    assert.ok(violation.description.length > 0);
  }
  assert.equal(error.details.errorInfo?.domain, ERROR_DOMAIN);
  assert.equal(error.details.preconditionFailure, undefined);
  assert.match(String(error), /^ModelRouterError: INVALID_ARGUMENT: /);
});

test("an empty conversation is INVALID_ARGUMENT naming `messages`", async () => {
  const error = await failure(client.execute([]));
  assert.equal(error.codeName, "INVALID_ARGUMENT");
  assert.ok(
    error.details.badRequest?.fieldViolations.some((v) => v.field === "messages"),
    JSON.stringify(error.details.badRequest?.fieldViolations),
  );
});

test("constraints no model meets are FAILED_PRECONDITION with a PreconditionFailure", async () => {
  const error = await failure(client.route("hi", { requiredCapabilities: ["audio"] }));
  assert.equal(error.codeName, "FAILED_PRECONDITION");
  const [violation] = error.details.preconditionFailure?.violations ?? [];
  assert.equal(violation?.type, "NO_ELIGIBLE_MODEL");
  assert.equal(violation?.subject, "constraints.required_capabilities");
  assert.match(violation?.description ?? "", /audio/);
  assertErrorInfo(error, "NO_ELIGIBLE_MODEL");
  assert.equal(error.details.errorInfo?.metadata.constraint, "constraints.required_capabilities");
});

test("an unknown model in GetModel is NOT_FOUND with a ResourceInfo", async () => {
  const error = await failure(client.getModel("gpt-nope"));
  assert.equal(error.codeName, "NOT_FOUND");
  assert.equal(error.details.resourceInfo?.resourceType, "model");
  assert.equal(error.details.resourceInfo?.resourceName, "gpt-nope");
  assertErrorInfo(error, "MODEL_NOT_FOUND");
});

test("feedback on an unknown decision is NOT_FOUND with a ResourceInfo", async () => {
  const error = await failure(
    client.submitFeedback("00000000-0000-4000-8000-000000000000", 1),
  );
  assert.equal(error.codeName, "NOT_FOUND");
  assert.equal(error.details.resourceInfo?.resourceType, "decision");
  assert.equal(error.details.resourceInfo?.resourceName, "00000000-0000-4000-8000-000000000000");
  assertErrorInfo(error, "DECISION_NOT_FOUND");
});

test("an exhausted budget is RESOURCE_EXHAUSTED with a QuotaFailure naming the window", async () => {
  const broke = new ModelRouterClient(server.target, { apiKey: BROKE_KEY });
  try {
    const error = await failure(broke.execute("hello"));
    assert.equal(error.codeName, "RESOURCE_EXHAUSTED");
    const [violation] = error.details.quotaFailure?.violations ?? [];
    assert.equal(violation?.subject, "tenant:broke/budget:day");
    assertErrorInfo(error, "BUDGET_EXHAUSTED");
    assert.equal(error.details.errorInfo?.metadata.window, "day");
    assert.ok(!Number.isNaN(Date.parse(error.details.errorInfo?.metadata.resets_at ?? "")));
  } finally {
    broke.close();
  }
});

test("every attempt failing is UNAVAILABLE with an ExecuteFailure and a RetryInfo", async () => {
  const tooMany = {
    kind: "error",
    status: 429,
    message: "Rate limit reached",
    type: "rate_limit_error",
    headers: { "retry-after": "2" },
  } as const;
  server.upstream.enqueue(tooMany, tooMany);
  const error = await failure(client.execute("hello"));
  assert.equal(error.codeName, "UNAVAILABLE");
  assertErrorInfo(error, "ALL_ATTEMPTS_FAILED");
  const executeFailure = error.details.executeFailure;
  assert.ok(executeFailure, "no modelrouter.v1.ExecuteFailure detail");
  assert.deepEqual(
    executeFailure.attempts.map((a) => [a.model, a.outcome, a.errorType]),
    [
      ["fake-mini", "error", "rate_limit"],
      ["fake-large", "error", "rate_limit"],
    ],
  );
  assert.equal(executeFailure.streamStarted, false);
  assert.match(executeFailure.decisionId, /^[0-9a-f-]{36}$/);
  assert.equal(error.details.errorInfo?.metadata.attempts, "2");
  // google.protobuf.Duration: int64 seconds arrive as bigint.
  assert.equal(error.details.retryInfo?.retryDelay?.seconds, 2n);
});

test("a stream that breaks after deltas ends the iterator with an ExecuteFailure", async () => {
  server.upstream.enqueue({ kind: "stream", pieces: ["partial ", "answer"], abort: true });
  const deltas: string[] = [];
  const error = await failure(
    (async function* () {
      for await (const message of client.executeStream("hello")) {
        deltas.push(message.delta);
        yield message;
      }
    })(),
  );
  assert.deepEqual(deltas, ["partial ", "answer"]);
  assert.equal(error.codeName, "UNAVAILABLE");
  assertErrorInfo(error, "STREAM_INTERRUPTED");
  assert.equal(error.details.executeFailure?.streamStarted, true);
  assert.equal(error.details.executeFailure?.usageEstimated, true);
  assert.ok((error.details.executeFailure?.usage?.outputTokens ?? 0) > 0);
  assert.equal(error.details.executeFailure?.attempts.length, 1);
});

test("a model whose provider has no key is FAILED_PRECONDITION when forced", async () => {
  const error = await failure(client.execute("hello", { model: "keyless-model" }));
  assert.equal(error.codeName, "FAILED_PRECONDITION");
  const [violation] = error.details.preconditionFailure?.violations ?? [];
  assert.equal(violation?.type, "MODEL_UNAVAILABLE");
  assert.equal(violation?.subject, "keyless-model");
  assertErrorInfo(error, "MODEL_UNAVAILABLE");
});

test("a missing or unknown API key is UNAUTHENTICATED", async () => {
  const anonymous = new ModelRouterClient(server.target);
  const wrong = new ModelRouterClient(server.target, { apiKey: `${ACME_KEY}-wrong` });
  try {
    for (const caller of [anonymous, wrong]) {
      const error = await failure(caller.route("hi"));
      assert.equal(error.codeName, "UNAUTHENTICATED");
      assertErrorInfo(error, "UNAUTHENTICATED");
    }
  } finally {
    anonymous.close();
    wrong.close();
  }
});

test("no server at the target is UNAVAILABLE", async () => {
  const nowhere = new ModelRouterClient("127.0.0.1:1", { timeoutMs: 2_000 });
  try {
    const error = await failure(nowhere.listModels());
    assert.equal(error.codeName, "UNAVAILABLE");
    assert.deepEqual(error.details.errorInfo, undefined);
  } finally {
    nowhere.close();
  }
});

test("reflection answers v1alpha clients", async () => {
  const reply = await listServicesByReflection(server.target, "v1alpha");
  assert.equal(reply.status, "0");
  assert.ok(reply.body.includes("modelrouter.v1.ModelRouter"));
});

test(
  "reflection answers v1 clients",
  async () => {
    const reply = await listServicesByReflection(server.target, "v1");
    assert.equal(reply.status, "0", `grpc-status ${reply.status}`);
    assert.ok(reply.body.includes("modelrouter.v1.ModelRouter"));
  },
);

test(
  "an unknown model in Execute is NOT_FOUND with a ResourceInfo, like GetModel",
  async () => {
    const error = await failure(client.execute("hello", { model: "gpt-nope" }));
    assert.equal(error.codeName, "NOT_FOUND");
    assert.equal(error.details.resourceInfo?.resourceType, "model");
    assert.equal(error.details.resourceInfo?.resourceName, "gpt-nope");
    assertErrorInfo(error, "MODEL_NOT_FOUND");
  },
);

test(
  "validation errors carry a specific ErrorInfo reason, not the status name",
  async () => {
    const error = await failure(client.route("hi", { minQuality: 3 }));
    assert.equal(error.codeName, "INVALID_ARGUMENT");
    assert.equal(error.reason, "INVALID_REQUEST");
    assert.match(error.reason, /^[A-Z][A-Z0-9_]+$/);
  },
);

/**
 * Calls ServerReflectionInfo with a hand-encoded `list_services` request over plain HTTP/2,
 * so that no reflection proto needs shipping: the grpc-status and the raw response bytes.
 */
async function listServicesByReflection(
  target: string,
  version: "v1" | "v1alpha",
): Promise<{ status: string; body: string }> {
  const session = connect(`http://${target}`);
  try {
    const request = session.request({
      ":method": "POST",
      ":path": `/grpc.reflection.${version}.ServerReflection/ServerReflectionInfo`,
      "content-type": "application/grpc",
      te: "trailers",
    });
    // ServerReflectionRequest { list_services = "" } (field 7, length 0) in one gRPC frame.
    const message = Buffer.from([0x3a, 0x00]);
    const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, message.length]), message]);
    request.end(frame);
    const chunks: Buffer[] = [];
    let status: string | undefined;
    request.on("response", (headers) => {
      status ??= headers["grpc-status"] as string | undefined; // trailers-only response
    });
    request.on("trailers", (trailers) => {
      status = trailers["grpc-status"] as string | undefined;
    });
    for await (const chunk of request) {
      chunks.push(chunk as Buffer);
    }
    return { status: status ?? "missing", body: Buffer.concat(chunks).toString("latin1") };
  } finally {
    session.close();
  }
}
