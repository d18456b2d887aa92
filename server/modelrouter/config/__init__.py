"""The configuration file: one TOML file, validated on load.

Every validation error names the file, the key and what was expected, for example
``config.toml: models[2].quality: expected a number in [0, 1], got 1.5``. The shipped
default is ``default_config.toml`` beside this module; ``MODELROUTER_CONFIG`` or
``serve --config`` names another.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..types import Complexity, TaskType
from .reader import Reader
from .state import (
    AdaptiveConfig,
    ApiKey,
    AuthConfig,
    BudgetLimits,
    BudgetsConfig,
    DegradeTier,
    StateConfig,
    StorageConfig,
    parse_state,
)
from .telemetry import TelemetryConfig, parse_telemetry

__all__ = [
    "DEFAULT_CONFIG_NAME",
    "AdaptiveConfig",
    "ApiKey",
    "AuthConfig",
    "BudgetLimits",
    "BudgetsConfig",
    "Config",
    "DegradeTier",
    "ExecutionConfig",
    "ModelSpec",
    "ProviderConfig",
    "RoutingConfig",
    "ServerConfig",
    "StateConfig",
    "StorageConfig",
    "TelemetryConfig",
    "load_config",
    "parse_config",
]

DEFAULT_CONFIG_NAME = "default_config.toml"
TOP_LEVEL_TABLES = (
    "server",
    "routing",
    "providers",
    "models",
    "execution",
    "storage",
    "budgets",
    "auth",
    "adaptive",
    "telemetry",
    "classifiers",
)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model of the catalog."""

    name: str
    provider: str
    upstream_model: str
    input_price_usd_per_mtok: float
    output_price_usd_per_mtok: float
    context_window_tokens: int
    typical_latency_ms: float
    quality: float
    max_complexity: Complexity
    capabilities: frozenset[str] = frozenset()
    quality_by_task: Mapping[TaskType, float] = field(default_factory=dict)

    def quality_for(self, task_type: TaskType) -> float:
        return self.quality_by_task.get(task_type, self.quality)

    def cost_usd(self, input_tokens: int, output_tokens: int) -> float:
        return (
            input_tokens * self.input_price_usd_per_mtok
            + output_tokens * self.output_price_usd_per_mtok
        ) / 1_000_000


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """A ``[providers.NAME]`` table: which provider plugin serves it and how."""

    name: str
    type: str
    api_key_env: str | None = None
    base_url: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 50051
    max_message_bytes: int = 4 * 1024 * 1024
    grace_period_s: float = 10.0
    #: Fail startup when any plugin fails to load, instead of reporting and going on.
    strict_plugins: bool = False


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    default_classifier: str = "rules"
    default_max_output_tokens: int = 512
    #: Minimum model quality each complexity demands.
    min_quality: Mapping[Complexity, float] = field(
        default_factory=lambda: {
            Complexity.SIMPLE: 0.0,
            Complexity.MODERATE: 0.55,
            Complexity.COMPLEX: 0.7,
            Complexity.EXPERT: 0.85,
        }
    )
    #: Capabilities each task type requires of a model.
    task_capabilities: Mapping[TaskType, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExecutionConfig:
    """The ``[execution]`` table: retries, backoff, circuit breaking and timeouts of Execute."""

    #: Calls to one model per request before moving to the next fallback (1 = no retry).
    max_attempts_per_model: int = 2
    #: Full-jitter backoff: the n-th retry waits uniform(0, min(max, base * 2**n)) seconds,
    #: or the upstream's Retry-After when it gives one.
    backoff_base_s: float = 0.25
    #: Longest wait before a retry; a Retry-After above it moves to the next fallback instead.
    backoff_max_s: float = 5.0
    #: Consecutive failures after which a model cools down and selection skips it.
    circuit_failure_threshold: int = 5
    #: How long a model cools down, in seconds.
    circuit_cooldown_s: float = 10.0
    #: Longest an Execute call may take when the caller sets a longer (or no) deadline.
    request_timeout_s: float = 120.0


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig
    routing: RoutingConfig
    providers: Mapping[str, ProviderConfig]
    models: tuple[ModelSpec, ...]
    source: str = "<default>"
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    #: Storage, budgets, auth and adaptive routing: ``[storage]``, ``[budgets]``, ``[auth]``,
    #: ``[adaptive]``.
    state: StateConfig = field(default_factory=lambda: StateConfig())
    #: Traces, metrics and exporters (``[telemetry]``); OTEL_* variables override it at startup.
    telemetry: TelemetryConfig = field(default_factory=lambda: TelemetryConfig())
    #: ``[classifiers.NAME]`` tables, passed as given to the plugin providing NAME, which
    #: validates them (see ``modelrouter.PluginContext.options``).
    classifiers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load and validate ``path``, ``$MODELROUTER_CONFIG``, or the shipped default."""
    path = path or os.environ.get("MODELROUTER_CONFIG")
    if path is None:
        text = resources.files("modelrouter").joinpath(DEFAULT_CONFIG_NAME).read_text("utf-8")
        return parse_config(text, source=DEFAULT_CONFIG_NAME)
    file = Path(path)
    try:
        text = file.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read configuration: {exc.strerror}") from None
    return parse_config(text, source=str(file))


def parse_config(text: str, source: str = "<string>") -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    reader = Reader(source)
    # A misspelt table would otherwise be ignored and its settings silently defaulted.
    reader.only("", data, TOP_LEVEL_TABLES)
    server = _server(reader, reader.table(data, "server"))
    routing = _routing(reader, reader.table(data, "routing"))
    providers = {
        name: _provider(
            reader, f"providers.{name}", name, reader.table(table, None, f"providers.{name}")
        )
        for name, table in reader.table(data, "providers").items()
    }
    models = tuple(
        _model(reader, f"models[{i}]", reader.table(entry, None, f"models[{i}]"), providers)
        for i, entry in enumerate(reader.array(data, "models"))
    )
    if not models:
        raise ConfigError(f"{source}: models: expected at least one [[models]] entry")
    names = [m.name for m in models]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{source}: models: duplicate model names {duplicates}")
    execution = _execution(reader, reader.table(data, "execution"))
    state = parse_state(reader, data)
    telemetry = parse_telemetry(reader, reader.table(data, "telemetry"))
    classifiers = {
        name: reader.table(options, None, f"classifiers.{name}")
        for name, options in reader.table(data, "classifiers").items()
    }
    return Config(
        server, routing, providers, models, source, execution, state, telemetry, classifiers
    )


def _server(r: Reader, data: dict[str, Any]) -> ServerConfig:
    d = ServerConfig()
    return ServerConfig(
        host=r.string(data, "host", "server", d.host),
        port=r.integer(data, "port", "server", d.port),
        max_message_bytes=r.integer(data, "max_message_bytes", "server", d.max_message_bytes, 1024),
        grace_period_s=r.number(data, "grace_period_s", "server", d.grace_period_s),
        strict_plugins=r.boolean(data, "strict_plugins", "server", d.strict_plugins),
    )


def _routing(r: Reader, data: dict[str, Any]) -> RoutingConfig:
    d = RoutingConfig()
    min_quality = dict(d.min_quality)
    for key, value in r.table(data, "min_quality", "routing.min_quality").items():
        level = r.enum_key(Complexity, key, f"routing.min_quality.{key}")
        min_quality[level] = r.number({key: value}, key, "routing.min_quality", high=1.0)
    capabilities = {
        r.enum_key(TaskType, key, f"routing.task_capabilities.{key}"): r.strings(
            {key: value}, key, "routing.task_capabilities"
        )
        for key, value in r.table(data, "task_capabilities", "routing.task_capabilities").items()
    }
    return RoutingConfig(
        default_classifier=r.string(data, "default_classifier", "routing", d.default_classifier),
        default_max_output_tokens=r.integer(
            data, "default_max_output_tokens", "routing", d.default_max_output_tokens, 1
        ),
        min_quality=min_quality,
        task_capabilities=capabilities,
    )


def _execution(r: Reader, data: dict[str, Any]) -> ExecutionConfig:
    d = ExecutionConfig()
    known = {f for f in ExecutionConfig.__dataclass_fields__}
    for key in data:
        if key not in known:
            raise r.fail(f"execution.{key}", f"one of {', '.join(sorted(known))}", key)
    return ExecutionConfig(
        max_attempts_per_model=r.integer(
            data, "max_attempts_per_model", "execution", d.max_attempts_per_model, 1
        ),
        backoff_base_s=r.number(data, "backoff_base_s", "execution", d.backoff_base_s),
        backoff_max_s=r.number(data, "backoff_max_s", "execution", d.backoff_max_s),
        circuit_failure_threshold=r.integer(
            data, "circuit_failure_threshold", "execution", d.circuit_failure_threshold, 1
        ),
        circuit_cooldown_s=r.number(data, "circuit_cooldown_s", "execution", d.circuit_cooldown_s),
        request_timeout_s=r.number(
            data, "request_timeout_s", "execution", d.request_timeout_s, low=0.001
        ),
    )


def _provider(r: Reader, path: str, name: str, data: dict[str, Any]) -> ProviderConfig:
    known = {"type", "api_key_env", "base_url"}
    return ProviderConfig(
        name=name,
        type=r.string(data, "type", path, name),
        api_key_env=r.optional_string(data, "api_key_env", path),
        base_url=r.optional_string(data, "base_url", path),
        options={k: v for k, v in data.items() if k not in known},
    )


def _model(
    r: Reader, path: str, data: dict[str, Any], providers: Mapping[str, ProviderConfig]
) -> ModelSpec:
    name = r.string(data, "name", path)
    provider = r.string(data, "provider", path)
    if provider not in providers:
        choices = ", ".join(sorted(providers)) or "none configured"
        raise r.fail(f"{path}.provider", f"a configured provider ({choices})", provider)
    quality_by_task = {
        r.enum_key(TaskType, key, f"{path}.quality_by_task.{key}"): r.number(
            {key: value}, key, f"{path}.quality_by_task", high=1.0
        )
        for key, value in r.table(data, "quality_by_task", f"{path}.quality_by_task").items()
    }
    return ModelSpec(
        name=name,
        provider=provider,
        upstream_model=r.string(data, "upstream_model", path, name),
        input_price_usd_per_mtok=r.number(data, "input_price_usd_per_mtok", path),
        output_price_usd_per_mtok=r.number(data, "output_price_usd_per_mtok", path),
        context_window_tokens=r.integer(data, "context_window_tokens", path, low=1),
        typical_latency_ms=r.number(data, "typical_latency_ms", path),
        quality=r.number(data, "quality", path, high=1.0),
        max_complexity=r.enum_key(
            Complexity, r.string(data, "max_complexity", path, "expert"), f"{path}.max_complexity"
        ),
        capabilities=r.strings(data, "capabilities", path),
        quality_by_task=quality_by_task,
    )
