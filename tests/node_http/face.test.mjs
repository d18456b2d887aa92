// The official `openai` npm package against modelrouter's OpenAI-compatible HTTP face.
// Run by tests/test_http_node.py, which starts the server (over a fake OpenAI upstream
// that calls get_weather when offered tools) and passes its URL and key in the
// environment: MODELROUTER_BASE_URL, MODELROUTER_API_KEY.
import assert from "node:assert/strict";
import { test } from "node:test";
import OpenAI from "openai";

const baseURL = process.env.MODELROUTER_BASE_URL;
const apiKey = process.env.MODELROUTER_API_KEY;
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
const question = { role: "user", content: "What is the weather in Paris?" };
const weather = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather in a city.",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};
const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47]), Buffer.alloc(32)]).toString("base64");

test("unary: routes, answers with the catalog model and the router headers", async () => {
  const { data, response } = await client.chat.completions
    .create({ model: "auto", messages: [question] })
    .withResponse();
  assert.equal(data.model, "text-model");
  assert.equal(data.choices[0].message.content, "echo: What is the weather in Paris?");
  assert.equal(data.choices[0].finish_reason, "stop");
  assert.match(response.headers.get("x-modelrouter-decision-id"), /\S+/);
  assert.equal(response.headers.get("x-modelrouter-model"), "text-model");
  assert.ok(Number(response.headers.get("x-modelrouter-cost-usd")) > 0);
  assert.equal(data.id, `chatcmpl-${response.headers.get("x-modelrouter-decision-id")}`);
});

test("streaming: chunks add up to the answer, then a usage chunk", async () => {
  const stream = await client.chat.completions.create({
    model: "auto",
    messages: [question],
    stream: true,
    stream_options: { include_usage: true },
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");
  // The fake upstream streams the echo word by word, without the spaces.
  assert.equal(text, "echo:WhatistheweatherinParis?");
  assert.ok(chunks.length >= 6);
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.ok(last.usage.total_tokens > 0);
  const finish = chunks.find((c) => c.choices[0]?.finish_reason);
  assert.equal(finish.choices[0].finish_reason, "stop");
  assert.equal(finish.model, "text-model");
});

test("tools: a call, its result, then the answer", async () => {
  const first = await client.chat.completions.create({ model: "auto", messages: [question], tools: [weather] });
  assert.equal(first.model, "tool-model");
  assert.equal(first.choices[0].finish_reason, "tool_calls");
  const [call] = first.choices[0].message.tool_calls;
  assert.equal(call.function.name, "get_weather");
  assert.deepEqual(JSON.parse(call.function.arguments), { city: "Paris" });
  const final = await client.chat.completions.create({
    model: "auto",
    tools: [weather],
    messages: [question, first.choices[0].message, { role: "tool", tool_call_id: call.id, content: '{"c": 18}' }],
  });
  assert.equal(final.choices[0].message.content, 'echo: {"c": 18}');
});

test("tools, streamed: tool-call deltas assemble into the call", async () => {
  const stream = await client.chat.completions.create({
    model: "auto", messages: [question], tools: [weather], stream: true,
  });
  let id = "", name = "", args = "", finish = "";
  for await (const chunk of stream) {
    const choice = chunk.choices[0];
    if (!choice) continue;
    for (const piece of choice.delta.tool_calls ?? []) {
      id ||= piece.id ?? "";
      name ||= piece.function?.name ?? "";
      args += piece.function?.arguments ?? "";
    }
    finish = choice.finish_reason ?? finish;
  }
  assert.equal(id, "call_1");
  assert.equal(name, "get_weather");
  assert.deepEqual(JSON.parse(args), { city: "Paris" });
  assert.equal(finish, "tool_calls");
});

test("images go to a vision model", async () => {
  const answer = await client.chat.completions.create({
    model: "auto",
    messages: [{ role: "user", content: [
      { type: "text", text: "What is this?" },
      { type: "image_url", image_url: { url: `data:image/png;base64,${PNG}` } },
    ] }],
  });
  assert.equal(answer.model, "tool-model");
});

test("errors: 400 names the param, 404 for an unknown model", async () => {
  await assert.rejects(
    client.chat.completions.create({ model: "auto", messages: [question], temperature: 7 }),
    (error) => error instanceof OpenAI.BadRequestError && error.param === "temperature" && error.code === "invalid_request",
  );
  await assert.rejects(
    client.chat.completions.create({ model: "gpt-9", messages: [question] }),
    (error) => error instanceof OpenAI.NotFoundError && error.param === "model",
  );
});

test("auth: a wrong key is 401", async () => {
  const stranger = new OpenAI({ baseURL, apiKey: "sk-wrong", maxRetries: 0 });
  await assert.rejects(
    stranger.chat.completions.create({ model: "auto", messages: [question] }),
    (error) => error instanceof OpenAI.AuthenticationError,
  );
});

test("models: auto and the catalog", async () => {
  const ids = [];
  for await (const model of client.models.list()) ids.push(model.id);
  assert.deepEqual(ids, ["auto", "tool-model", "text-model"]);
});
