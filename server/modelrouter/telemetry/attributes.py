"""Names of every span attribute and metric modelrouter records (listed in docs/telemetry.md).

Standard names follow the OpenTelemetry RPC and GenAI semantic conventions; the routing
decision, which no convention covers yet, lives in the ``modelrouter.*`` namespace.
"""

from __future__ import annotations

from typing import Final

# -- OpenTelemetry RPC conventions (SERVER span of each ModelRouter call) ---------------
RPC_SYSTEM: Final = "rpc.system"
RPC_SERVICE: Final = "rpc.service"
RPC_METHOD: Final = "rpc.method"
RPC_GRPC_STATUS_CODE: Final = "rpc.grpc.status_code"
ERROR_TYPE: Final = "error.type"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"

# -- OpenTelemetry GenAI conventions (CLIENT span of each provider attempt) ------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_REQUEST_TOP_P: Final = "gen_ai.request.top_p"
GEN_AI_REQUEST_SEED: Final = "gen_ai.request.seed"
GEN_AI_REQUEST_STOP_SEQUENCES: Final = "gen_ai.request.stop_sequences"
#: ``json`` when the request asks for a response format, else ``text``.
GEN_AI_OUTPUT_TYPE: Final = "gen_ai.output.type"
#: Tool definitions offered to the model (names and schemas: content, so opt-in only).
GEN_AI_TOOL_DEFINITIONS: Final = "gen_ai.tool.definitions"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
#: ``gen_ai.operation.name`` of every provider call: all providers are chat completions.
OPERATION_CHAT: Final = "chat"

# -- modelrouter.*: the routing decision and its outcome ----------------------------------
DECISION_ID: Final = "modelrouter.decision_id"
TENANT: Final = "modelrouter.tenant"
CLASSIFIER: Final = "modelrouter.classifier"
COMPLEXITY: Final = "modelrouter.complexity"
TASK_TYPE: Final = "modelrouter.task_type"
SCORE: Final = "modelrouter.score"
CONFIDENCE: Final = "modelrouter.confidence"
#: Version (content hash) of the trained router that classified; only when one did.
ROUTER_VERSION: Final = "modelrouter.router.version"
SELECTED_MODEL: Final = "modelrouter.selected.model"
SELECTED_PROVIDER: Final = "modelrouter.selected.provider"
CANDIDATES: Final = "modelrouter.candidates"
CANDIDATE_COUNT: Final = "modelrouter.candidates.count"
REASON: Final = "modelrouter.reason"
ESTIMATED_COST_USD: Final = "modelrouter.estimated.cost_usd"
ESTIMATED_LATENCY_MS: Final = "modelrouter.estimated.latency_ms"
ESTIMATED_INPUT_TOKENS: Final = "modelrouter.estimated.input_tokens"
RESPONSE_MODEL: Final = "modelrouter.response.model"
FALLBACK_POSITION: Final = "modelrouter.fallback.position"
RETRY: Final = "modelrouter.retry"
ATTEMPTS: Final = "modelrouter.attempts"
COST_USD: Final = "modelrouter.cost_usd"
OUTCOME: Final = "modelrouter.outcome"
MODEL: Final = "modelrouter.model"
#: How many tools the request offered (a count, recorded always; names only with capture).
TOOL_COUNT: Final = "modelrouter.request.tool_count"
STREAM_STARTED: Final = "modelrouter.stream_started"

# -- Metric names ---------------------------------------------------------------------
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_RPC_DURATION: Final = "rpc.server.duration"
METRIC_DECISIONS: Final = "modelrouter.decisions"
METRIC_COST: Final = "modelrouter.cost"
METRIC_FALLBACKS: Final = "modelrouter.fallbacks"
METRIC_RETRIES: Final = "modelrouter.retries"
METRIC_CIRCUIT_OPENINGS: Final = "modelrouter.circuit_breaker.openings"
METRIC_CLASSIFIER_DURATION: Final = "modelrouter.classifier.duration"
METRIC_ROUTING_DURATION: Final = "modelrouter.routing.duration"
METRIC_SHADOW_EVALUATIONS: Final = "modelrouter.shadow.evaluations"
METRIC_SHADOW_QUALITY_GAP: Final = "modelrouter.shadow.quality_gap"
METRIC_SHADOW_CALIBRATION_ERROR: Final = "modelrouter.shadow.calibration_error"
METRIC_SHADOW_SKIPPED: Final = "modelrouter.shadow.skipped"
#: Shadow evaluation: the judge found the answer adequate (bool), why one was skipped,
#: and which line of a tenant's spend a cost is on (``shadow`` for shadow evaluation).
SHADOW_ADEQUATE: Final = "modelrouter.shadow.adequate"
SHADOW_SKIP_REASON: Final = "modelrouter.shadow.skip_reason"
COST_LINE: Final = "modelrouter.cost.line"

#: Bucket boundaries the GenAI conventions recommend, in seconds and tokens.
OPERATION_DURATION_BUCKETS: Final = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
TOKEN_USAGE_BUCKETS: Final = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)
#: Classifier latency and routing overhead are sub-millisecond to tens of milliseconds.
ROUTING_DURATION_BUCKETS: Final = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
