"""Every table and key of the configuration file, declared once: type, default, bounds, doc.

The classes are pydantic dataclasses: built from the file by ``parse_config``, and built
directly (keyword arguments, ``dataclasses.replace``) by code and tests, validated either way.
``docs/configuration.md`` is generated from these declarations (``config/reference.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic.dataclasses import dataclass

from ..errors import ConfigError
from ..types import Complexity, TaskType
from .fields import TABLE, ComplexityName, Flag, Fraction, Int, Number, Port, TaskName, Text
from .routers import RoutersConfig
from .shadow import ShadowConfig
from .state import StateConfig
from .telemetry import TelemetryConfig

__all__ = [
    "Config",
    "ExecutionConfig",
    "HttpConfig",
    "LimitsConfig",
    "ModelSpec",
    "ProviderConfig",
    "RoutingConfig",
    "ServerConfig",
]


@dataclass(frozen=True, slots=True, config=TABLE)
class ServerConfig:
    """The ``[server]`` table: the gRPC listener."""

    host: Text = Field(default="127.0.0.1", description="Address the gRPC server binds.")
    port: Port = Field(default=50051, description="gRPC port (0: any free port).")
    max_message_bytes: Int = Field(
        default=4 * 1024 * 1024, ge=1024, description="Largest request or response, in bytes."
    )
    grace_period_s: Number = Field(
        default=10.0, ge=0.0, description="Seconds in-flight calls get to finish on SIGTERM."
    )
    strict_plugins: Flag = Field(
        default=False,
        description="Refuse to start when a plugin fails to load (off: report and go on).",
    )
    max_concurrent_rpcs: Int = Field(
        default=1000, ge=0, description="Calls served at once; more are refused (0: unlimited)."
    )
    max_concurrent_streams_per_connection: Int = Field(
        default=100, ge=1, description="HTTP/2 streams one client connection may open at once."
    )
    keepalive_min_time_s: Number = Field(
        default=10.0,
        ge=0.0,
        description="Shortest interval between client keepalive pings accepted.",
    )


def _default_min_quality() -> dict[Complexity, float]:
    return {
        Complexity.SIMPLE: 0.0,
        Complexity.MODERATE: 0.55,
        Complexity.COMPLEX: 0.7,
        Complexity.EXPERT: 0.85,
    }


@dataclass(frozen=True, slots=True, config=TABLE)
class RoutingConfig:
    """The ``[routing]`` table: how a classification turns into a choice of model."""

    default_classifier: Text = Field(
        default="rules",
        description="Classifier of requests that name none (a loaded plugin's name).",
    )
    default_max_output_tokens: Int = Field(
        default=512,
        ge=1,
        description="Output tokens assumed for cost estimates when a request sets none.",
    )
    #: Minimum model quality each complexity demands.
    min_quality: Mapping[ComplexityName, Fraction] = Field(
        default_factory=_default_min_quality,
        description="Minimum model quality per complexity; complexities not given keep "
        "their default (simple 0, moderate 0.55, complex 0.7, expert 0.85).",
    )
    #: Capabilities each task type requires of a model.
    task_capabilities: Mapping[TaskName, frozenset[Text]] = Field(
        default_factory=dict, description="Capabilities a model must have, per task type."
    )
    session_ttl_s: Number = Field(
        default=3600.0, ge=1.0, description="Seconds a session keeps its model after its last turn."
    )
    floor: Literal["soft", "hard"] = Field(
        default="soft",
        description="`soft`: when no model meets a tier's quality floor, the best one meeting "
        "the caller's constraints answers; `hard`: the request fails.",
    )

    @field_validator("min_quality", mode="before")
    @classmethod
    def _over_defaults(cls, value: Any) -> Any:
        # A file sets the levels it cares about; the others keep their defaults.
        if isinstance(value, Mapping):
            defaults: dict[Any, Any] = {
                k.name.lower(): v for k, v in _default_min_quality().items()
            }
            given = {
                k.name.lower() if isinstance(k, Complexity) else k: v for k, v in value.items()
            }
            return {**defaults, **given}
        return value


@dataclass(frozen=True, slots=True, config=TABLE)
class ExecutionConfig:
    """The ``[execution]`` table: retries, backoff, circuit breaking and timeouts of Execute."""

    max_attempts_per_model: Int = Field(
        default=2,
        ge=1,
        description="Calls to one model per request before the next fallback (1: no retry).",
    )
    #: Full-jitter backoff: the n-th retry waits uniform(0, min(max, base * 2**n)) seconds,
    #: or the upstream's Retry-After when it gives one.
    backoff_base_s: Number = Field(
        default=0.25,
        ge=0.0,
        description="Full-jitter backoff: retry n waits up to base * 2**n seconds.",
    )
    backoff_max_s: Number = Field(
        default=5.0,
        ge=0.0,
        description="Longest retry wait; a longer Retry-After moves to the next fallback.",
    )
    circuit_failure_threshold: Int = Field(
        default=5, ge=1, description="Consecutive failures after which a model cools down."
    )
    circuit_cooldown_s: Number = Field(
        default=10.0, ge=0.0, description="Seconds a cooling model is skipped by selection."
    )
    request_timeout_s: Number = Field(
        default=120.0,
        ge=0.001,
        description="Cap on one Execute call when the caller's deadline is longer.",
    )
    stream_idle_timeout_s: Number = Field(
        default=30.0,
        ge=0.001,
        description="A stream whose reader takes nothing this long is cancelled.",
    )


@dataclass(frozen=True, slots=True, config=TABLE)
class LimitsConfig:
    """The ``[limits]`` table: the largest request the server accepts, refused early."""

    max_messages: Int = Field(default=1000, ge=1, description="Messages in one request.")
    max_parts_per_message: Int = Field(
        default=100, ge=1, description="Content parts in one message."
    )
    max_tools: Int = Field(default=128, ge=0, description="Tools declared by one request.")
    max_schema_bytes: Int = Field(
        default=65536,
        ge=0,
        description="Bytes of one JSON schema (tool parameters, structured output).",
    )
    max_prompt_chars: Int = Field(
        default=2_000_000,
        ge=1,
        description="Characters of text across all messages of one request.",
    )
    max_constraint_entries: Int = Field(
        default=256,
        ge=0,
        description="Entries of each repeated constraint (providers, models, ...).",
    )
    max_metadata_entries: Int = Field(
        default=64, ge=0, description="Metadata entries of one request."
    )
    max_metadata_value_chars: Int = Field(
        default=512, ge=0, description="Characters of one metadata value."
    )
    max_feedback_comment_chars: Int = Field(
        default=4096, ge=0, description="Characters of one feedback comment."
    )
    max_feedback_source_chars: Int = Field(
        default=128, ge=0, description="Characters of one feedback source name."
    )
    max_feedback_sources: Int = Field(
        default=32, ge=1, description="Distinct feedback sources kept per decision."
    )
    max_image_bytes: Int = Field(default=20 * 1024 * 1024, ge=0, description="Bytes of one image.")
    tenant_requests_per_second: Number = Field(
        default=0.0, ge=0.0, description="Sustained calls per second per tenant (0: unlimited)."
    )
    tenant_request_burst: Int = Field(
        default=50, ge=1, description="Calls a tenant may make at once above its per-second rate."
    )
    feedback_per_minute_per_tenant: Int = Field(
        default=600, ge=0, description="SubmitFeedback calls per minute per tenant (0: unlimited)."
    )


@dataclass(frozen=True, slots=True, config=TABLE)
class HttpConfig:
    """The ``[http]`` table: the OpenAI-compatible HTTP face and the operator dashboard."""

    host: Text = Field(default="127.0.0.1", description="Address the HTTP server binds.")
    port: Port = Field(default=8080, description="HTTP port (0: no HTTP server).")
    admin_tenants: tuple[Text, ...] = Field(
        default=(), description="Tenants allowed to see every tenant's data on the dashboard."
    )


@dataclass(frozen=True, slots=True, config=TABLE)
class ModelSpec:
    """One ``[[models]]`` entry of the catalog."""

    name: Text = Field(description="Catalog name callers and the decision log use.")
    provider: Text = Field(description="A `[providers.NAME]` table that serves the model.")
    upstream_model: Text = Field(
        description="Model name sent to the provider.",
        json_schema_extra={"file_default": "the model's `name`"},
    )
    input_price_usd_per_mtok: Number = Field(ge=0.0, description="USD per 1M input tokens.")
    output_price_usd_per_mtok: Number = Field(ge=0.0, description="USD per 1M output tokens.")
    context_window_tokens: Int = Field(ge=1, description="Tokens of prompt plus output it takes.")
    typical_latency_ms: Number = Field(ge=0.0, description="Typical latency of a call, in ms.")
    quality: Fraction = Field(description="Share of requests it answers well (0..1).")
    max_complexity: ComplexityName = Field(
        description="Most demanding complexity it is chosen for.",
        json_schema_extra={"file_default": '`"expert"`'},
    )
    capabilities: frozenset[Text] = Field(
        default=frozenset(),
        description="What it can do: chat, code, json, tools, vision, long_context...",
    )
    quality_by_task: Mapping[TaskName, Fraction] = Field(
        default_factory=dict, description="Quality per task type, where it differs from `quality`."
    )

    def quality_for(self, task_type: TaskType) -> float:
        return self.quality_by_task.get(task_type, self.quality)

    def cost_usd(self, input_tokens: int, output_tokens: int) -> float:
        return (
            input_tokens * self.input_price_usd_per_mtok
            + output_tokens * self.output_price_usd_per_mtok
        ) / 1_000_000


@dataclass(frozen=True, slots=True, config=TABLE)
class ProviderConfig:
    """A ``[providers.NAME]`` table: which provider plugin serves it and how.

    Keys other than these three are the plugin's own ``options`` (it validates them).
    """

    name: Text = Field(description="The table's NAME.", json_schema_extra={"in_file": False})
    type: Text = Field(
        description="Provider plugin type (openai, anthropic, local, ...).",
        json_schema_extra={"file_default": "the table's NAME"},
    )
    api_key_env: Text | None = Field(
        default=None, description="Environment variable holding the API key; unset: no key."
    )
    base_url: Text | None = Field(
        default=None, description="Endpoint of an OpenAI-compatible or self-hosted server."
    )
    options: Mapping[str, Any] = Field(
        default_factory=dict,
        description="Any other key: passed to the provider plugin, which validates it.",
        json_schema_extra={"in_file": False},
    )


@dataclass(frozen=True, slots=True, config=TABLE)
class Config:
    """The whole file. ``state`` groups ``[storage]``, ``[budgets]``, ``[auth]``, ``[adaptive]``."""

    server: ServerConfig = Field(default_factory=ServerConfig)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    providers: Mapping[str, ProviderConfig] = Field(
        default_factory=dict, description="`[providers.NAME]` tables."
    )
    models: tuple[ModelSpec, ...] = Field(
        default=(), description="`[[models]]` entries: the catalog."
    )
    source: str = Field(
        default="<default>", description="File (or string) the configuration came from."
    )
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    #: Storage, budgets, auth and adaptive routing: ``[storage]``, ``[budgets]``, ``[auth]``,
    #: ``[adaptive]``.
    state: StateConfig = Field(default_factory=StateConfig)
    #: Traces, metrics and exporters (``[telemetry]``); OTEL_* variables override it at startup.
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    #: ``[classifiers.NAME]`` tables, passed as given to the plugin providing NAME, which
    #: validates them (see ``modelrouter.PluginContext.options``).
    classifiers: Mapping[str, Mapping[str, Any]] = Field(
        default_factory=dict, description="`[classifiers.NAME]` tables, passed to the plugins."
    )
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    #: Versioned learned routers, retraining and A/B (``[routers]``).
    routers: RoutersConfig = Field(default_factory=RoutersConfig)
    shadow: ShadowConfig = Field(default_factory=ShadowConfig)

    def check_workers(self, workers: int) -> None:
        """Refuse ``workers`` > 1 processes when state lives inside one process: each would
        keep its own budgets, sessions and decision log, and budgets would not hold."""
        if workers <= 1:
            return
        storage = self.state.storage
        problems = [
            f"{self.source}: storage.{key}: {value!r} keeps state inside one process; "
            f"serve --workers {workers} needs a shared store (sqlite on a file, redis or postgres)"
            for key, value in (("hot", storage.hot), ("log", storage.log))
            if value == "memory" or (value == "sqlite" and storage.sqlite_path == ":memory:")
        ]
        if problems:
            raise ConfigError("\n".join(problems))
