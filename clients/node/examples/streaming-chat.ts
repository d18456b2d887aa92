/**
 * A terminal chat: each line you type is sent with the conversation so far, and the answer
 * is printed as it streams, followed by the model, tokens and cost. Ctrl-C during an answer
 * cancels it (the server stops generating); Ctrl-C or Ctrl-D at the prompt quits.
 *
 *   MODELROUTER_TARGET=localhost:50051 MODELROUTER_API_KEY=... node dist/examples/streaming-chat.js
 */
import { createInterface } from "node:readline/promises";

import { ModelRouterClient, ModelRouterError, type Turn } from "@modelrouter/client";

const client = new ModelRouterClient(process.env.MODELROUTER_TARGET ?? "localhost:50051", {
  apiKey: process.env.MODELROUTER_API_KEY,
  timeoutMs: 120_000,
});
const conversation: Turn[] = [{ role: "system", content: "You are a helpful, concise assistant." }];
const input = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY });
let answering: AbortController | undefined;
input.on("SIGINT", () => (answering ? answering.abort() : input.close()));

try {
  for await (const line of input) {
    if (!line.trim()) {
      continue;
    }
    conversation.push({ role: "user", content: line });
    answering = new AbortController();
    let text = "";
    try {
      for await (const message of client.executeStream(conversation, {}, { signal: answering.signal })) {
        if (message.summary) {
          const { model, usage, costUsd } = message.summary;
          console.log(
            `\n[${model}: ${usage?.inputTokens ?? 0} in, ${usage?.outputTokens ?? 0} out, $${costUsd.toFixed(6)}]`,
          );
        } else {
          text += message.delta;
          process.stdout.write(message.delta);
        }
      }
      conversation.push({ role: "assistant", content: text });
    } catch (error) {
      if (!(error instanceof ModelRouterError)) {
        throw error;
      }
      console.log(`\n[${error.codeName}: ${error.message}]`);
      conversation.pop(); // forget the unanswered turn
    } finally {
      answering = undefined;
    }
  }
} finally {
  input.close();
  client.close();
}
