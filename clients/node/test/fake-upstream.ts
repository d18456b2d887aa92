/**
 * An HTTP server on 127.0.0.1 speaking the OpenAI chat-completions wire format: JSON answers,
 * SSE streams (a role chunk, one chunk per piece, a finish chunk, a usage chunk, `[DONE]`),
 * error bodies with status codes and Retry-After. It answers from a script of replies (then a
 * default success), records every request, and notes when a client hangs up mid-answer, as
 * a real provider stops generating then. The Node twin of tests/fake_upstreams.py.
 */
import { once } from "node:events";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

/** A whole JSON answer: text, or tool calls (then finish_reason is "tool_calls"). */
export interface Completion {
  kind: "completion";
  text: string;
  toolCalls?: { id: string; name: string; arguments: string }[];
  promptTokens?: number;
  completionTokens?: number;
  delayMs?: number;
}

/**
 * An SSE answer, one chunk per piece, `delayMs` apart; usage follows the last piece. With
 * `abort`, the connection is dropped right after the pieces (no finish, no usage).
 */
export interface Stream {
  kind: "stream";
  pieces: string[];
  delayMs?: number;
  promptTokens?: number;
  abort?: boolean;
}

/** An OpenAI error body with an HTTP status (and headers such as Retry-After). */
export interface Failure {
  kind: "error";
  status: number;
  message: string;
  type?: string;
  headers?: Record<string, string>;
}

/** Never answer; the request ends only when the client hangs up. */
export interface Hang {
  kind: "hang";
}

export type Reply = Completion | Stream | Failure | Hang;

export interface RecordedRequest {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: {
    model: string;
    stream?: boolean;
    messages: {
      role: string;
      content: string | null;
      tool_call_id?: string;
      tool_calls?: { id: string; type: string; function: { name: string; arguments: string } }[];
    }[];
    tools?: { type: string; function: { name: string; description?: string; parameters?: object } }[];
    max_tokens?: number;
    max_completion_tokens?: number;
    temperature?: number;
  };
}

export class FakeOpenAI {
  readonly requests: RecordedRequest[] = [];
  /** Requests whose client hung up before the answer was complete, in order. */
  readonly hangups: RecordedRequest[] = [];
  private readonly script: Reply[] = [];
  private readonly hangupWaiters: (() => void)[] = [];
  private server: Server | undefined;
  baseUrl = "";

  /** Queue replies for the next requests, in order. */
  enqueue(...replies: Reply[]): void {
    this.script.push(...replies);
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        res.destroy(error instanceof Error ? error : new Error(String(error)));
      });
    });
    this.server.listen(0, "127.0.0.1");
    await once(this.server, "listening");
    const { port } = this.server.address() as AddressInfo;
    this.baseUrl = `http://127.0.0.1:${port}/v1`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }

  /** Resolves when `count` hang-ups in total have been seen. */
  async waitForHangups(count: number): Promise<void> {
    while (this.hangups.length < count) {
      await new Promise<void>((resolve) => this.hangupWaiters.push(resolve));
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) {
      chunks.push(chunk as Buffer);
    }
    if (req.method !== "POST" || req.url !== "/v1/chat/completions") {
      res.writeHead(404).end();
      return;
    }
    const recorded: RecordedRequest = {
      path: req.url,
      headers: req.headers,
      body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as RecordedRequest["body"],
    };
    this.requests.push(recorded);
    let finished = false;
    res.on("close", () => {
      if (!finished) {
        this.hangups.push(recorded);
        this.hangupWaiters.splice(0).forEach((wake) => wake());
      }
    });
    const reply = this.script.shift() ?? defaultReply(recorded.body.stream === true);
    const model = recorded.body.model;
    switch (reply.kind) {
      case "hang":
        await once(res, "close");
        return;
      case "error":
        finished = true;
        sendJson(res, reply.status, {
          error: { message: reply.message, type: reply.type ?? "server_error", param: null, code: null },
        }, reply.headers);
        return;
      case "completion":
        await sleep(reply.delayMs ?? 0);
        finished = true;
        sendJson(res, 200, completion(model, reply));
        return;
      case "stream":
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
        for (const event of streamEvents(model, reply)) {
          if (res.destroyed) {
            return;
          }
          res.write(`data: ${JSON.stringify(event)}\n\n`);
          await sleep(reply.delayMs ?? 0);
        }
        finished = true;
        if (reply.abort) {
          res.socket?.destroy();
          return;
        }
        res.end("data: [DONE]\n\n");
        return;
    }
  }
}

function defaultReply(stream: boolean): Reply {
  return stream
    ? { kind: "stream", pieces: ["Hello", ", ", "world"] }
    : { kind: "completion", text: "Hello, world" };
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

function completion(model: string, reply: Completion) {
  const prompt = reply.promptTokens ?? 11;
  const output = reply.completionTokens ?? 7;
  const toolCalls = reply.toolCalls?.map((call) => ({
    id: call.id,
    type: "function",
    function: { name: call.name, arguments: call.arguments },
  }));
  return {
    id: "chatcmpl-node",
    object: "chat.completion",
    created: 1700000000,
    model,
    choices: [
      {
        index: 0,
        message: toolCalls
          ? { role: "assistant", content: reply.text || null, tool_calls: toolCalls }
          : { role: "assistant", content: reply.text },
        finish_reason: toolCalls ? "tool_calls" : "stop",
        logprobs: null,
      },
    ],
    usage: { prompt_tokens: prompt, completion_tokens: output, total_tokens: prompt + output },
  };
}

function* streamEvents(model: string, reply: Stream) {
  const chunk = (delta: object, finish: string | null = null) => ({
    id: "chatcmpl-node",
    object: "chat.completion.chunk",
    created: 1700000000,
    model,
    choices: [{ index: 0, delta, finish_reason: finish }],
  });
  yield chunk({ role: "assistant", content: "" });
  for (const piece of reply.pieces) {
    yield chunk({ content: piece });
  }
  if (reply.abort) {
    return;
  }
  yield chunk({}, "stop");
  const prompt = reply.promptTokens ?? 11;
  const output = reply.pieces.length;
  yield {
    id: "chatcmpl-node",
    object: "chat.completion.chunk",
    created: 1700000000,
    model,
    choices: [],
    usage: { prompt_tokens: prompt, completion_tokens: output, total_tokens: prompt + output },
  };
}
