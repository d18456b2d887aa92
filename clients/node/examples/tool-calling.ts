/**
 * A tool-calling loop: the model may call `get_weather` instead of answering; each call is
 * run here and its result sent back as a ROLE_TOOL turn, until the model answers in text.
 * Requests with tools are routed only to models with the "tools" capability.
 *
 *   MODELROUTER_TARGET=localhost:50051 MODELROUTER_API_KEY=... \
 *   node dist/examples/tool-calling.js "Should I take an umbrella in Paris today?"
 */
import { ModelRouterClient, ModelRouterError, type ToolCall, type Turn } from "@modelrouter/client";

const tools = [
  {
    name: "get_weather",
    description: "Current weather of a city.",
    parametersJson: JSON.stringify({
      type: "object",
      properties: { city: { type: "string", description: "City name, e.g. Paris" } },
      required: ["city"],
      additionalProperties: false,
    }),
  },
];

/** Your real implementation goes here. */
function runTool(call: ToolCall): unknown {
  const args = JSON.parse(call.argumentsJson || "{}") as { city?: string };
  if (call.name === "get_weather") {
    return { city: args.city, condition: "light rain", temperature_c: 14 };
  }
  return { error: `unknown tool ${call.name}` };
}

const client = new ModelRouterClient(process.env.MODELROUTER_TARGET ?? "localhost:50051", {
  apiKey: process.env.MODELROUTER_API_KEY,
});
const conversation: Turn[] = [
  { role: "user", content: process.argv[2] ?? "Should I take an umbrella in Paris today?" },
];

try {
  for (let round = 1; round <= 5; round++) {
    const answer = await client.execute(conversation, { tools, toolChoice: "auto" });
    if (answer.toolCalls.length === 0) {
      console.log(`${answer.text}\n[${answer.model}, ${round} round(s), $${answer.costUsd.toFixed(6)}]`);
      break;
    }
    // Keep the assistant turn with its calls, then answer each call by its id.
    conversation.push({ role: "assistant", content: answer.text, toolCalls: answer.toolCalls });
    for (const call of answer.toolCalls) {
      const result = runTool(call);
      console.log(`tool ${call.name}(${call.argumentsJson}) -> ${JSON.stringify(result)}`);
      conversation.push({ role: "tool", toolCallId: call.id, content: JSON.stringify(result) });
    }
  }
} catch (error) {
  if (!(error instanceof ModelRouterError)) {
    throw error;
  }
  console.error(String(error));
  for (const v of error.details.badRequest?.fieldViolations ?? []) {
    console.error(`  ${v.field}: ${v.description}`);
  }
  process.exitCode = 1;
} finally {
  client.close();
}
