/**
 * Route with modelrouter, then call the chosen model yourself: useful when your service must
 * hold its own provider keys or use provider features modelrouter does not proxy. Falls back
 * along the router's candidates, then reports how good the answer was so that adaptive
 * routing learns from it.
 *
 *   MODELROUTER_TARGET=localhost:50051 MODELROUTER_API_KEY=... \
 *   OPENAI_BASE_URL=https://api.openai.com/v1 OPENAI_API_KEY=sk-... \
 *   node dist/examples/route-then-call.js "Write a SQL query that lists duplicate emails"
 */
import { ModelRouterClient, ModelRouterError } from "@modelrouter/client";

const prompt = process.argv[2] ?? "Write a SQL query that lists duplicate emails";
const baseUrl = process.env.OPENAI_BASE_URL ?? "https://api.openai.com/v1";
const router = new ModelRouterClient(process.env.MODELROUTER_TARGET ?? "localhost:50051", {
  apiKey: process.env.MODELROUTER_API_KEY,
});

try {
  const decision = await router.route(prompt, { minQuality: 0.5, maxCostUsd: 0.01 });
  console.log(`decision ${decision.decisionId}: ${decision.reason}`);
  // This example only knows how to call OpenAI-compatible providers.
  const models = new Map((await router.listModels()).map((m) => [m.name, m]));
  const candidates = [decision.selected, ...decision.fallbacks].flatMap((c) => {
    const model = c && models.get(c.model);
    return model && model.provider === c.provider ? [model] : [];
  });
  let answer: string | undefined;
  for (const model of candidates) {
    const response = await fetch(`${baseUrl}/chat/completions`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${process.env.OPENAI_API_KEY ?? ""}`,
      },
      body: JSON.stringify({
        model: model.upstreamModel,
        messages: [{ role: "user", content: prompt }],
      }),
    });
    if (!response.ok) {
      console.error(`${model.name}: HTTP ${response.status}; trying the next candidate`);
      continue;
    }
    const body = (await response.json()) as { choices: { message: { content: string } }[] };
    answer = body.choices[0]?.message.content ?? "";
    console.log(`answered by ${model.name} (${model.upstreamModel}):\n${answer}`);
    break;
  }
  // Success and a score in [0, 1]; here simply whether any candidate answered.
  const feedback = await router.submitFeedback(decision.decisionId, answer ? 1 : 0, {
    success: answer !== undefined,
    source: "route-then-call-example",
  });
  console.log(`feedback recorded${feedback.duplicate ? " (duplicate)" : ""}`);
  process.exitCode = answer === undefined ? 1 : 0;
} catch (error) {
  if (!(error instanceof ModelRouterError)) {
    throw error;
  }
  // For example FAILED_PRECONDITION when no model meets the constraints.
  console.error(String(error));
  for (const v of error.details.preconditionFailure?.violations ?? []) {
    console.error(`  constraint ${v.subject}: ${v.description}`);
  }
  process.exitCode = 1;
} finally {
  router.close();
}
