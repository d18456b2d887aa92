/**
 * A thin typed wrapper over the generated ModelRouter service, shaped like the Python client
 * (clients/python/modelrouter_client): prompts or role/content turns in, generated response
 * messages out, every failure a {@link ModelRouterError}.
 */
import { create, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { type Client, type Transport, createClient } from "@connectrpc/connect";
import { Http2SessionManager, createGrpcTransport } from "@connectrpc/connect-node";

import { ModelRouterError } from "./errors.js";
import {
  type ClassifyResponse,
  ClassifyRequestSchema,
  ConstraintsSchema,
  type ExecuteResponse,
  type ExecuteStreamResponse,
  ExecuteRequestSchema,
  type GetStatsResponse,
  type GetUsageResponse,
  type ListPluginsResponse,
  type Message,
  MessageSchema,
  type Model,
  ModelRouter,
  Role,
  RoleSchema,
  type RouteResponse,
  RouteRequestSchema,
  type SubmitFeedbackResponse,
} from "./gen/modelrouter/v1/router_pb.js";

type Init<Desc extends DescMessage> = Omit<MessageInitShape<Desc>, "$typeName" | "$unknown">;

/** A role by its lower-case name: "system", "user", "assistant" (and any role the proto adds). */
export type RoleName = Exclude<Lowercase<keyof typeof Role>, "unspecified">;

/** One conversation turn: the fields of modelrouter.v1.Message, with the role as a name or enum. */
export type Turn = Omit<Init<typeof MessageSchema>, "role"> & { role: RoleName | Role };

/** A prompt (one user turn), or the whole conversation, oldest turn first. */
export type Conversation = string | readonly Turn[];

/** Fields of modelrouter.v1.Constraints, camelCase (`minQuality`, `maxCostUsd`, ...). */
export type ConstraintOptions = Init<typeof ConstraintsSchema>;

/** Options of classify: the constraints (only `classifier` is used, the rest is validated). */
export type ClassifyOptions = ConstraintOptions & RequestFields<typeof ClassifyRequestSchema>;

/** Options of route: the constraints, plus any other RouteRequest field. */
export type RouteOptions = ConstraintOptions & RequestFields<typeof RouteRequestSchema>;

/** Options of execute and executeStream: the constraints, plus `model`, `temperature`, ... */
export type ExecuteOptions = ConstraintOptions & RequestFields<typeof ExecuteRequestSchema>;

type RequestFields<Desc extends DescMessage> = Omit<Init<Desc>, "messages" | "constraints">;

/** Per-call options; each overrides the client's default for one call. */
export interface CallOptions {
  /** Deadline of this call, in milliseconds; `null`: none. Default: the client's `timeoutMs`. */
  timeoutMs?: number | null;
  /** Aborting it cancels the call (the server stops working on it) with code CANCELLED. */
  signal?: AbortSignal;
  /** Extra request metadata. */
  headers?: Record<string, string>;
}

export interface ModelRouterClientOptions {
  /** Sent as `authorization: Bearer <apiKey>` on every call (the server's `[auth]` keys). */
  apiKey?: string;
  /** Default deadline of every call, in milliseconds; `null`: none. Default 30000. */
  timeoutMs?: number | null;
  /**
   * A Connect transport to use instead of the built-in plaintext/TLS HTTP/2 gRPC transport
   * (for example one created with `createGrpcTransport` with client certificates or
   * interceptors). `close()` does not close a transport passed here.
   */
  transport?: Transport;
}

export interface FeedbackOptions {
  /** Whether the answer was usable at all. Default true. */
  success?: boolean;
  /** Free text for humans, at most 10,000 characters. */
  comment?: string;
  /** Who is judging (a user id, "eval-suite", ...). Empty: the server's "default". */
  source?: string;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * Client of a modelrouter server. `target` is `"host:port"` (plaintext) or a URL
 * (`"http://host:port"`, `"https://host:port"` for TLS).
 *
 * ```ts
 * const client = new ModelRouterClient("localhost:50051", { apiKey: process.env.MODELROUTER_API_KEY });
 * const decision = await client.route("Write a SQL query that ...", { minQuality: 0.7 });
 * ```
 */
export class ModelRouterClient {
  /** The generated Connect client, for calls and request fields the wrapper does not cover. */
  readonly raw: Client<typeof ModelRouter>;
  private readonly timeoutMs: number | null;
  private readonly headers: Record<string, string>;
  private readonly sessions: Http2SessionManager | undefined;

  constructor(target: string, options: ModelRouterClientOptions = {}) {
    let transport = options.transport;
    if (transport === undefined) {
      const baseUrl = /^https?:\/\//.test(target) ? target : `http://${target}`;
      this.sessions = new Http2SessionManager(baseUrl);
      transport = createGrpcTransport({ baseUrl, sessionManager: this.sessions });
    }
    this.raw = createClient(ModelRouter, transport);
    this.timeoutMs = options.timeoutMs === undefined ? DEFAULT_TIMEOUT_MS : options.timeoutMs;
    this.headers = options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {};
  }

  /** How demanding the request is and what kind of task; no model is chosen. */
  async classify(
    conversation: Conversation,
    options: ClassifyOptions = {},
    call: CallOptions = {},
  ): Promise<ClassifyResponse> {
    const request = buildRequest(ClassifyRequestSchema, conversation, options);
    return this.unary(() => this.raw.classify(request, this.callOptions(call)));
  }

  /** The chosen model and its fallbacks, cheapest first; nothing is called. */
  async route(
    conversation: Conversation,
    options: RouteOptions = {},
    call: CallOptions = {},
  ): Promise<RouteResponse> {
    const request = buildRequest(RouteRequestSchema, conversation, options);
    return this.unary(() => this.raw.route(request, this.callOptions(call)));
  }

  /** Routes, calls the chosen model (failing over) and returns the whole answer. */
  async execute(
    conversation: Conversation,
    options: ExecuteOptions = {},
    call: CallOptions = {},
  ): Promise<ExecuteResponse> {
    const request = buildRequest(ExecuteRequestSchema, conversation, options);
    return this.unary(() => this.raw.execute(request, this.callOptions(call)));
  }

  /**
   * Execute with the answer streamed: messages with a text `delta`, then one final message
   * whose `summary` carries the model, usage, cost and attempts.
   *
   * The call starts when iteration starts. Leaving the `for await` loop early (break,
   * return or a throw in the loop body) cancels the call, so the server stops generating.
   */
  async *executeStream(
    conversation: Conversation,
    options: ExecuteOptions = {},
    call: CallOptions = {},
  ): AsyncGenerator<ExecuteStreamResponse, void, undefined> {
    const request = buildRequest(ExecuteRequestSchema, conversation, options);
    const stop = new AbortController();
    const signal = call.signal ? AbortSignal.any([call.signal, stop.signal]) : stop.signal;
    try {
      for await (const message of this.raw.executeStream(
        request,
        this.callOptions({ ...call, signal }),
      )) {
        yield message;
      }
    } catch (error) {
      throw ModelRouterError.from(error);
    } finally {
      // Runs when the consumer leaves the loop early too: resets the HTTP/2 stream, which
      // cancels the call on the server. After a complete stream it does nothing.
      stop.abort();
    }
  }

  /** Every model of the catalog, available or not, in catalog order. */
  async listModels(call: CallOptions = {}): Promise<Model[]> {
    const response = await this.unary(() => this.raw.listModels({}, this.callOptions(call)));
    return response.models;
  }

  /** One catalog model by name; an unknown name is NOT_FOUND. */
  async getModel(name: string, call: CallOptions = {}): Promise<Model> {
    const response = await this.unary(() => this.raw.getModel({ name }, this.callOptions(call)));
    if (response.model === undefined) {
      throw new TypeError(`GetModel(${JSON.stringify(name)}) returned no model`);
    }
    return response.model;
  }

  /** Every plugin the server tried to load, and the classifiers callers may name. */
  async listPlugins(call: CallOptions = {}): Promise<ListPluginsResponse> {
    return this.unary(() => this.raw.listPlugins({}, this.callOptions(call)));
  }

  /** Records how good the answer of decision `decisionId` was (`score` in [0, 1]). */
  async submitFeedback(
    decisionId: string,
    score: number,
    options: FeedbackOptions = {},
    call: CallOptions = {},
  ): Promise<SubmitFeedbackResponse> {
    const request = {
      decisionId,
      score,
      success: options.success ?? true,
      comment: options.comment ?? "",
      source: options.source ?? "",
    };
    return this.unary(() => this.raw.submitFeedback(request, this.callOptions(call)));
  }

  /** The calling tenant's spend, reservations and what is left in each budget window. */
  async getUsage(call: CallOptions = {}): Promise<GetUsageResponse> {
    return this.unary(() => this.raw.getUsage({}, this.callOptions(call)));
  }

  /** What this server process observed since it started (calls, latency, cost, saving). */
  async getStats(call: CallOptions = {}): Promise<GetStatsResponse> {
    return this.unary(() => this.raw.getStats({}, this.callOptions(call)));
  }

  /** Closes the HTTP/2 connection of the built-in transport; in-flight calls fail. */
  close(): void {
    this.sessions?.abort();
  }

  private callOptions(call: CallOptions) {
    const timeoutMs = call.timeoutMs === undefined ? this.timeoutMs : call.timeoutMs;
    return {
      timeoutMs: timeoutMs ?? undefined,
      signal: call.signal,
      headers: { ...this.headers, ...call.headers },
    };
  }

  private async unary<T>(send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (error) {
      throw ModelRouterError.from(error);
    }
  }
}

/** The modelrouter.v1.Message list of a conversation; throws TypeError on an unknown role. */
export function buildMessages(conversation: Conversation): Message[] {
  if (typeof conversation === "string") {
    return [create(MessageSchema, { role: Role.USER, content: conversation })];
  }
  return conversation.map((turn) => {
    const role = typeof turn.role === "number" ? turn.role : roleByName(turn.role);
    return create(MessageSchema, { ...turn, role });
  });
}

function roleByName(name: string): Role {
  const value = RoleSchema.values.find(
    (v) => v.number !== Role.UNSPECIFIED && v.localName.toLowerCase() === name,
  );
  if (value === undefined) {
    const valid = RoleSchema.values.filter((v) => v.number !== Role.UNSPECIFIED);
    throw new TypeError(
      `unknown role ${JSON.stringify(name)}; valid: ${valid.map((v) => v.localName.toLowerCase()).join(", ")}`,
    );
  }
  return value.number as Role;
}

/**
 * One request message from a conversation and flat options: keys that are Constraints fields
 * go into `constraints`, other keys must be fields of the request itself. An unknown key
 * (such as snake_case `min_quality`) is a TypeError instead of being silently dropped.
 */
function buildRequest<Desc extends DescMessage>(
  schema: Desc,
  conversation: Conversation,
  options: object,
) {
  const constraintFields = new Set(ConstraintsSchema.fields.map((f) => f.localName));
  const requestFields = new Set(
    schema.fields.map((f) => f.localName).filter((n) => n !== "messages" && n !== "constraints"),
  );
  const constraints: Record<string, unknown> = {};
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) {
      continue;
    }
    if (constraintFields.has(key)) {
      constraints[key] = value;
    } else if (requestFields.has(key)) {
      fields[key] = value;
    } else {
      throw new TypeError(unknownOption(key, [...constraintFields, ...requestFields]));
    }
  }
  const init = { ...fields, messages: buildMessages(conversation), constraints };
  return create(schema, init as unknown as MessageInitShape<Desc>);
}

function unknownOption(key: string, valid: string[]): string {
  const camel = key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  const hint = camel !== key && valid.includes(camel) ? `; did you mean ${camel}?` : "";
  return `unknown option ${JSON.stringify(key)}${hint} (valid: ${valid.join(", ")})`;
}
