/**
 * Failed calls as one typed error: the gRPC status code and the google.rpc details the server
 * packs into the `grpc-status-details-bin` trailer, already decoded.
 */
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { Code as ConnectCode, ConnectError } from "@connectrpc/connect";

import { Code } from "./gen/google/rpc/code_pb.js";
import {
  type BadRequest,
  BadRequestSchema,
  type ErrorInfo,
  ErrorInfoSchema,
  type PreconditionFailure,
  PreconditionFailureSchema,
  type QuotaFailure,
  QuotaFailureSchema,
  type ResourceInfo,
  ResourceInfoSchema,
  type RetryInfo,
  RetryInfoSchema,
} from "./gen/google/rpc/error_details_pb.js";
import { type ExecuteFailure, ExecuteFailureSchema } from "./gen/modelrouter/v1/router_pb.js";

/** The error domain of every ErrorInfo the server sends. */
export const ERROR_DOMAIN = "modelrouter.dev";

/** A gRPC status name as the server documents it, for example `"INVALID_ARGUMENT"`. */
export type CodeName = keyof typeof Code;

/**
 * The details of a failed call, one field per detail type the server sends (see the error
 * model in router.proto). A field is undefined when the status did not carry that type.
 */
export interface ErrorDetails {
  /** INVALID_ARGUMENT: each bad request field (`constraints.min_quality`, ...) and why. */
  badRequest?: BadRequest;
  /** FAILED_PRECONDITION: the constraint that left no eligible model, or the unavailable model. */
  preconditionFailure?: PreconditionFailure;
  /** RESOURCE_EXHAUSTED: the tenant budget window that ran out. */
  quotaFailure?: QuotaFailure;
  /** NOT_FOUND: what was looked up (a model, a decision). */
  resourceInfo?: ResourceInfo;
  /** How long an upstream asked callers to wait before retrying. */
  retryInfo?: RetryInfo;
  /** Execute / ExecuteStream after a model was chosen: every attempt, its usage and cost. */
  executeFailure?: ExecuteFailure;
  /** Sent with every status: a stable machine-readable `reason` in domain "modelrouter.dev". */
  errorInfo?: ErrorInfo;
}

/**
 * Every failed call of {@link ModelRouterClient} rejects (or, for a stream, throws from the
 * iterator) with this error, including transport failures such as a refused connection
 * (UNAVAILABLE) or a caller deadline that ran out (DEADLINE_EXCEEDED).
 */
export class ModelRouterError extends Error {
  override readonly name = "ModelRouterError";
  /** The gRPC status code; the numbers are those of google.rpc.Code and of every gRPC library. */
  readonly code: Code;
  /** The status name, for example `"NOT_FOUND"`. */
  readonly codeName: CodeName;
  /** The decoded google.rpc details. */
  readonly details: ErrorDetails;
  /** Response headers and trailers of the failed call. */
  readonly metadata: Headers;

  constructor(error: ConnectError) {
    super(error.rawMessage, { cause: error });
    // Connect's Code enum uses the gRPC numbers, so the value converts one to one.
    this.code = error.code as number as Code;
    this.codeName = Code[this.code] as CodeName;
    this.metadata = error.metadata;
    this.details = {
      badRequest: first(error, BadRequestSchema),
      preconditionFailure: first(error, PreconditionFailureSchema),
      quotaFailure: first(error, QuotaFailureSchema),
      resourceInfo: first(error, ResourceInfoSchema),
      retryInfo: first(error, RetryInfoSchema),
      executeFailure: first(error, ExecuteFailureSchema),
      errorInfo: first(error, ErrorInfoSchema),
    };
  }

  /** ErrorInfo's stable machine-readable reason (`"NO_ELIGIBLE_MODEL"`, ...); "" when absent. */
  get reason(): string {
    return this.details.errorInfo?.reason ?? "";
  }

  override toString(): string {
    return `${this.name}: ${this.codeName}: ${this.message}`;
  }

  /** Wraps anything a Connect call threw; an existing ModelRouterError is returned unchanged. */
  static from(error: unknown): ModelRouterError {
    if (error instanceof ModelRouterError) {
      return error;
    }
    return new ModelRouterError(ConnectError.from(error, ConnectCode.Unknown));
  }
}

function first<Desc extends DescMessage>(
  error: ConnectError,
  schema: Desc,
): MessageShape<Desc> | undefined {
  return error.findDetails(schema)[0];
}
