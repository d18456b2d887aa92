/**
 * Every call of ModelRouterClient against the real server, and what a Node developer got
 * wrong with @grpc/proto-loader defaults (issue 16): snake_case keys dropped, zero values
 * missing, enums as bare numbers or prefixed names, int64 as Long.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { toJson } from "@bufbuild/protobuf";

import {
  Complexity,
  ModelRouterClient,
  ModelRouterError,
  ModelSchema,
  Role,
  TaskType,
} from "../src/index.js";
import { ACME_KEY, BROKE_KEY, type RunningServer, UPSTREAM_KEY, startServer } from "./server.js";

let server: RunningServer;
let client: ModelRouterClient;

before(async () => {
  server = await startServer();
  client = server.client;
});

after(async () => {
  await server?.stop();
});

test("listModels returns typed models with zero values, enum names and task keys", async () => {
  const models = await client.listModels();
  assert.deepEqual(
    models.map((m) => m.name),
    ["fake-mini", "fake-large", "keyless-model"],
  );
  const [mini, large, keyless] = models;
  assert.ok(mini && large && keyless);
  // A false boolean is present as `false`, not missing (proto-loader dropped it).
  assert.equal(keyless.available, false);
  assert.match(keyless.unavailableReason, /MODELROUTER_NODE_TEST_UNSET_KEY/);
  assert.equal(mini.available, true);
  assert.equal(mini.unavailableReason, "");
  // Enums are TypeScript enums: comparable to named members, printable by name.
  assert.equal(mini.maxComplexity, Complexity.MODERATE);
  assert.equal(Complexity[large.maxComplexity], "EXPERT");
  // quality_by_task is keyed like TaskType's names, lower-case, and typed as numbers.
  assert.deepEqual(large.qualityByTask, { code: 0.95 });
  assert.equal(TaskType[TaskType.CODE].toLowerCase(), "code");
  assert.equal(mini.inputPriceUsdPerMtok, 0.1);
  assert.equal(large.contextWindowTokens, 1_000_000);
  assert.deepEqual(large.capabilities, ["chat", "code", "long_context", "tools"]);
  // Proto JSON uses the proto's own enum names, as grpcurl and the Python CLI do.
  const json = toJson(ModelSchema, mini) as Record<string, unknown>;
  assert.equal(json.maxComplexity, "COMPLEXITY_MODERATE");
});

test("getModel returns one model by name", async () => {
  const model = await client.getModel("fake-large");
  assert.equal(model.provider, "fake");
  assert.equal(model.upstreamModel, "fake-large-2025");
});

test("listPlugins names the classifiers callers may choose", async () => {
  const plugins = await client.listPlugins();
  assert.equal(plugins.defaultClassifier, "rules");
  assert.ok(plugins.classifiers.includes("rules"), plugins.classifiers.join(", "));
  assert.ok(plugins.plugins.some((p) => p.registered.includes("provider:openai")));
});

test("classify returns complexity and task type as enums", async () => {
  const verdict = await client.classify("Translate 'good morning' into French");
  assert.equal(verdict.taskType, TaskType.TRANSLATION);
  assert.equal(verdict.classifier, "rules");
  assert.ok(verdict.complexity !== Complexity.UNSPECIFIED);
  assert.ok(verdict.confidence > 0 && verdict.confidence <= 1);
  assert.equal(typeof verdict.features, "object");
});

test("route chooses the cheapest model, and a camelCase constraint changes the choice", async () => {
  const cheap = await client.route("What is the capital of France?");
  assert.equal(cheap.selected?.model, "fake-mini");
  // Route offers models this server cannot call (no key here), for callers with their own.
  assert.deepEqual(
    cheap.fallbacks.map((c) => c.model),
    ["fake-large", "keyless-model"],
  );
  assert.match(cheap.decisionId, /^[0-9a-f-]{36}$/);
  assert.ok(cheap.estimatedInputTokens > 0);
  assert.ok(cheap.selected.estimatedCostUsd > 0);

  const strong = await client.route(
    [
      { role: "system", content: "Answer precisely." },
      { role: Role.USER, content: "What is the capital of France?" },
    ],
    { minQuality: 0.8 },
  );
  assert.equal(strong.selected?.model, "fake-large");
  assert.deepEqual(
    strong.fallbacks.map((c) => c.model),
    ["keyless-model"],
  );
});

test("a snake_case option is refused before any call instead of being silently dropped", async () => {
  const before = server.upstream.requests.length;
  // What an untyped JavaScript caller might write; TypeScript rejects it at compile time.
  const options = { min_quality: 0.8 } as unknown as { minQuality: number };
  await assert.rejects(client.route("hi", options), (error: unknown) => {
    assert.ok(error instanceof TypeError);
    assert.match(error.message, /unknown option "min_quality"; did you mean minQuality\?/);
    return true;
  });
  await assert.rejects(
    client.route([{ role: "robot" as "user", content: "hi" }]),
    /unknown role "robot"; valid: system, user, assistant, tool/,
  );
  assert.equal(server.upstream.requests.length, before);
});

test("execute calls the upstream with the conversation and returns usage and cost", async () => {
  server.upstream.enqueue({ kind: "completion", text: "Paris.", promptTokens: 20, completionTokens: 3 });
  const answer = await client.execute(
    [
      { role: "system", content: "Be brief." },
      { role: "user", content: "What is the capital of France?" },
    ],
    { temperature: 0.2, maxOutputTokens: 40 },
  );
  assert.equal(answer.text, "Paris.");
  assert.equal(answer.model, "fake-mini");
  assert.equal(answer.provider, "fake");
  assert.equal(answer.finishReason, "stop");
  assert.deepEqual(
    { input: answer.usage?.inputTokens, output: answer.usage?.outputTokens },
    { input: 20, output: 3 },
  );
  // 20 prompt tokens at $0.10/Mtok + 3 output tokens at $0.40/Mtok.
  assert.ok(Math.abs(answer.costUsd - (20 * 0.1 + 3 * 0.4) / 1e6) < 1e-12, String(answer.costUsd));
  assert.equal(answer.attempts.length, 1);
  assert.equal(answer.attempts[0]?.outcome, "ok");

  const sent = server.upstream.requests.at(-1);
  assert.ok(sent);
  assert.equal(sent.headers.authorization, `Bearer ${UPSTREAM_KEY}`);
  assert.equal(sent.body.model, "fake-mini-2025");
  assert.equal(sent.body.temperature, 0.2);
  assert.deepEqual(sent.body.messages, [
    { role: "system", content: "Be brief." },
    { role: "user", content: "What is the capital of France?" },
  ]);
});

test("execute with `model` calls that model instead of routing", async () => {
  const answer = await client.execute("hello", { model: "fake-large" });
  assert.equal(answer.model, "fake-large");
  assert.equal(server.upstream.requests.at(-1)?.body.model, "fake-large-2025");
});

test("executeStream yields deltas, then a summary with usage and cost", async () => {
  server.upstream.enqueue({ kind: "stream", pieces: ["The ", "answer ", "is ", "42."], promptTokens: 9 });
  const deltas: string[] = [];
  let summary;
  for await (const message of client.executeStream("What is the answer?")) {
    if (message.summary) {
      summary = message.summary;
    } else {
      deltas.push(message.delta);
    }
  }
  assert.equal(deltas.join(""), "The answer is 42.");
  assert.ok(summary, "the stream ended without a summary");
  assert.equal(summary.text, "");
  assert.equal(summary.model, "fake-mini");
  assert.equal(summary.usage?.inputTokens, 9);
  assert.equal(summary.usage?.outputTokens, 4);
  assert.ok(summary.costUsd > 0);
  assert.match(summary.decisionId, /^[0-9a-f-]{36}$/);
  assert.equal(server.upstream.requests.at(-1)?.body.stream, true);
});

test("leaving a for-await loop early cancels the stream on the server and upstream", async () => {
  const hangupsBefore = server.upstream.hangups.length;
  // 100 pieces 100 ms apart: ten seconds of generation unless the call is cancelled.
  const pieces = Array.from({ length: 100 }, (_, i) => `piece${i} `);
  server.upstream.enqueue({ kind: "stream", pieces, delayMs: 100 });
  const started = Date.now();
  let received = 0;
  for await (const message of client.executeStream("Write a long story")) {
    if (message.delta) {
      received += 1;
      break;
    }
  }
  assert.equal(received, 1);
  // The server gave up its upstream request: the provider stops generating.
  await withTimeout(server.upstream.waitForHangups(hangupsBefore + 1), 3_000, "upstream hang-up");
  assert.ok(Date.now() - started < 3_000);
  // And the next call does not queue behind the abandoned one.
  const t0 = Date.now();
  const answer = await client.execute("hello");
  assert.equal(answer.text, "Hello, world");
  assert.ok(Date.now() - t0 < 2_000, `next call took ${Date.now() - t0} ms`);
});

test("an abort signal cancels a stream mid-way with CANCELLED", async () => {
  const hangupsBefore = server.upstream.hangups.length;
  const pieces = Array.from({ length: 100 }, (_, i) => `p${i} `);
  server.upstream.enqueue({ kind: "stream", pieces, delayMs: 100 });
  const controller = new AbortController();
  const seen: string[] = [];
  await assert.rejects(
    (async () => {
      for await (const message of client.executeStream("story", {}, { signal: controller.signal })) {
        seen.push(message.delta);
        if (seen.length === 2) {
          controller.abort();
        }
      }
    })(),
    (error: unknown) => {
      assert.ok(error instanceof ModelRouterError, String(error));
      assert.equal(error.codeName, "CANCELLED");
      return true;
    },
  );
  await withTimeout(server.upstream.waitForHangups(hangupsBefore + 1), 3_000, "upstream hang-up");
});

test("a deadline shorter than the upstream's answer is DEADLINE_EXCEEDED and frees the upstream", async () => {
  const hangupsBefore = server.upstream.hangups.length;
  server.upstream.enqueue({ kind: "hang" });
  const started = Date.now();
  await assert.rejects(client.execute("hello", {}, { timeoutMs: 500 }), (error: unknown) => {
    assert.ok(error instanceof ModelRouterError, String(error));
    assert.equal(error.codeName, "DEADLINE_EXCEEDED");
    return true;
  });
  assert.ok(Date.now() - started < 2_000);
  await withTimeout(server.upstream.waitForHangups(hangupsBefore + 1), 3_000, "upstream hang-up");
});

test("submitFeedback reports a repeat from the same source as a duplicate", async () => {
  const decision = await client.route("What is 2 + 2?");
  const first = await client.submitFeedback(decision.decisionId, 0.9, { source: "node-test" });
  assert.equal(first.decisionId, decision.decisionId);
  assert.equal(first.duplicate, false); // present, not missing
  const again = await client.submitFeedback(decision.decisionId, 0.9, { source: "node-test" });
  assert.equal(again.duplicate, true);
  const other = await client.submitFeedback(decision.decisionId, 0.2, {
    source: "another-judge",
    success: false,
    comment: "wrong unit",
  });
  assert.equal(other.duplicate, false);
});

test("getUsage is per tenant: no budget for acme, the day window for broke", async () => {
  const acme = await client.getUsage();
  assert.equal(acme.tenant, "acme");
  assert.deepEqual(acme.windows, []);

  const broke = new ModelRouterClient(server.target, { apiKey: BROKE_KEY });
  try {
    const usage = await broke.getUsage();
    assert.equal(usage.tenant, "broke");
    assert.equal(usage.windows.length, 1);
    const [day] = usage.windows;
    assert.equal(day?.window, "day");
    assert.equal(day?.limitUsd, 0.000000001);
    assert.equal(day?.spentUsd, 0);
    assert.ok(!Number.isNaN(Date.parse(day?.resetsAt ?? "")));
  } finally {
    broke.close();
  }
});

test("getStats counters are bigint, not Long", async () => {
  const stats = await client.getStats();
  assert.equal(typeof stats.requests, "bigint");
  assert.ok(stats.requests >= 5n, String(stats.requests));
  assert.ok(stats.succeeded <= stats.requests);
  const execute = stats.methods.find((m) => m.method === "Execute");
  assert.ok(execute);
  assert.ok(execute.requests >= 3n);
  const mini = stats.models.find((m) => m.model === "fake-mini");
  assert.ok(mini && mini.inputTokens >= 20n);
});

test("the API key is sent as `authorization: Bearer <key>` on every call", async () => {
  // Checked through the server: the same call with and without the key.
  const keyed = new ModelRouterClient(server.target, { apiKey: ACME_KEY });
  const anonymous = new ModelRouterClient(server.target);
  try {
    assert.equal((await keyed.getUsage()).tenant, "acme");
    await assert.rejects(anonymous.getUsage(), (error: unknown) => {
      assert.ok(error instanceof ModelRouterError);
      assert.equal(error.codeName, "UNAUTHENTICATED");
      return true;
    });
  } finally {
    keyed.close();
    anonymous.close();
  }
});

test("examples/route-then-call routes, calls the provider itself and records feedback", async () => {
  const before = server.upstream.requests.length;
  const { stdout } = await runExample("route-then-call", ["What is the capital of France?"], {
    OPENAI_BASE_URL: server.upstream.baseUrl,
    OPENAI_API_KEY: "sk-example",
  });
  assert.match(stdout, /answered by fake-mini \(fake-mini-2025\):\nHello, world/);
  assert.match(stdout, /feedback recorded\n/);
  const direct = server.upstream.requests.slice(before);
  assert.equal(direct.length, 1);
  assert.equal(direct[0]?.headers.authorization, "Bearer sk-example");
});

test("examples/streaming-chat streams each answer with the conversation so far", async () => {
  server.upstream.enqueue(
    { kind: "stream", pieces: ["Hi ", "there."] },
    { kind: "stream", pieces: ["Still ", "here."] },
  );
  const before = server.upstream.requests.length;
  const { stdout } = await runExample("streaming-chat", [], {}, "Hello?\nAre you there?\n");
  assert.match(stdout, /Hi there\.\n\[fake-mini: \d+ in, 2 out, \$\d+\.\d{6}\]/);
  assert.match(stdout, /Still here\./);
  const second = server.upstream.requests[before + 1];
  assert.deepEqual(
    second?.body.messages.map((m) => [m.role, m.content]),
    [
      ["system", "You are a helpful, concise assistant."],
      ["user", "Hello?"],
      ["assistant", "Hi there."],
      ["user", "Are you there?"],
    ],
  );
});

test("examples/tool-calling runs the tool the model calls and sends the result back", async () => {
  server.upstream.enqueue(
    {
      kind: "completion",
      text: "",
      toolCalls: [{ id: "call_1", name: "get_weather", arguments: '{"city":"Paris"}' }],
    },
    { kind: "completion", text: "Yes: light rain in Paris." },
  );
  const before = server.upstream.requests.length;
  const { stdout } = await runExample("tool-calling", ["Umbrella in Paris?"]);
  assert.match(stdout, /tool get_weather\(\{"city":"Paris"\}\) -> \{"city":"Paris",/);
  assert.match(stdout, /Yes: light rain in Paris\.\n\[fake-mini, 2 round\(s\)/);
  const [first, second] = server.upstream.requests.slice(before);
  assert.equal(first?.body.tools?.[0]?.function.name, "get_weather");
  const [, assistant, tool] = second?.body.messages ?? [];
  assert.equal(assistant?.tool_calls?.[0]?.id, "call_1");
  assert.equal(tool?.role, "tool");
  assert.equal(tool?.tool_call_id, "call_1");
  assert.match(tool?.content ?? "", /light rain/);
});

/** Runs dist/examples/<name>.js against the test server; rejects on a non-zero exit. */
async function runExample(
  name: string,
  args: string[],
  env: Record<string, string> = {},
  stdin = "",
): Promise<{ stdout: string; stderr: string }> {
  const script = fileURLToPath(new URL(`../examples/${name}.js`, import.meta.url));
  const child = promisify(execFile)(process.execPath, [script, ...args], {
    env: { ...process.env, MODELROUTER_TARGET: server.target, MODELROUTER_API_KEY: ACME_KEY, ...env },
    timeout: 20_000,
  });
  child.child.stdin?.end(stdin);
  return child;
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
