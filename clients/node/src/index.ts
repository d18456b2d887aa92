/**
 * @modelrouter/client: a typed Node.js client of the modelrouter gRPC service.
 *
 * Every message, enum and service descriptor of modelrouter.v1 (generated from
 * protos/modelrouter/v1/router.proto by protoc-gen-es) is exported too, as are the
 * google.rpc error-detail, Status and Code types.
 */
export {
  type CallOptions,
  type ClassifyOptions,
  type ConstraintOptions,
  type Conversation,
  type ExecuteOptions,
  type FeedbackOptions,
  type ModelRouterClientOptions,
  type RoleName,
  type RouteOptions,
  type Turn,
  ModelRouterClient,
  buildMessages,
} from "./client.js";
export { type CodeName, type ErrorDetails, ERROR_DOMAIN, ModelRouterError } from "./errors.js";
export * from "./gen/modelrouter/v1/router_pb.js";
export * from "./gen/google/rpc/error_details_pb.js";
export * from "./gen/google/rpc/status_pb.js";
export * from "./gen/google/rpc/code_pb.js";
