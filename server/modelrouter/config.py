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

from .errors import ConfigError
from .types import Complexity, TaskType

DEFAULT_CONFIG_NAME = "default_config.toml"


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
    #: Tables this module does not interpret (telemetry, storage, ...), for other modules.
    extra: Mapping[str, Any] = field(default_factory=dict)
    source: str = "<default>"
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    #: Storage, budgets, auth and adaptive routing: ``[storage]``, ``[budgets]``, ``[auth]``,
    #: ``[adaptive]``.
    state: StateConfig = field(default_factory=lambda: StateConfig())
    #: Traces, metrics and exporters (``[telemetry]``); OTEL_* variables override it at startup.
    telemetry: TelemetryConfig = field(default_factory=lambda: TelemetryConfig())


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
    reader = _Reader(source)
    known = {"server", "routing", "providers", "models", "execution"}
    known |= {"storage", "budgets", "auth", "adaptive", "telemetry"}
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
    extra = {key: value for key, value in data.items() if key not in known}
    execution = _execution(reader, reader.table(data, "execution"))
    state = _state(reader, data)
    telemetry = _telemetry(reader, reader.table(data, "telemetry"))
    return Config(server, routing, providers, models, extra, source, execution, state, telemetry)


class _Reader:
    """Typed access to raw TOML values with errors that name the file and key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, expected: str, got: object) -> ConfigError:
        return ConfigError(f"{self.source}: {key}: expected {expected}, got {got!r}")

    def table(self, data: Any, key: str | None, path: str | None = None) -> dict[str, Any]:
        value = data.get(key, {}) if key is not None else data
        if not isinstance(value, dict):
            raise self.fail(path or key or "", "a table", value)
        return value

    def array(self, data: dict[str, Any], key: str) -> list[Any]:
        value = data.get(key, [])
        if not isinstance(value, list):
            raise self.fail(key, "an array of tables", value)
        return value

    def string(self, data: dict[str, Any], key: str, path: str, default: str | None = None) -> str:
        value = data.get(key, default)
        if not isinstance(value, str) or not value:
            raise self.fail(f"{path}.{key}", "a non-empty string", value)
        return value

    def optional_string(self, data: dict[str, Any], key: str, path: str) -> str | None:
        return None if key not in data else self.string(data, key, path)

    def number(
        self,
        data: dict[str, Any],
        key: str,
        path: str,
        default: float | None = None,
        low: float = 0.0,
        high: float = float("inf"),
    ) -> float:
        value = data.get(key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            bounds = f"in [{low:g}, {high:g}]" if high != float("inf") else f">= {low:g}"
            raise self.fail(f"{path}.{key}", f"a number {bounds}", value)
        return float(value)

    def integer(
        self, data: dict[str, Any], key: str, path: str, default: int | None = None, low: int = 0
    ) -> int:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self.fail(f"{path}.{key}", f"an integer >= {low}", value)
        return value

    def boolean(self, data: dict[str, Any], key: str, path: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(f"{path}.{key}", "true or false", value)
        return value

    def strings(self, data: dict[str, Any], key: str, path: str) -> frozenset[str]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(f"{path}.{key}", "an array of strings", value)
        return frozenset(value)

    def enum_key(self, enum: type[Complexity] | type[TaskType], key: str, path: str) -> Any:
        try:
            return enum[key.upper()]
        except KeyError:
            choices = ", ".join(m.name.lower() for m in enum)
            raise self.fail(path, f"one of {choices}", key) from None


def _server(r: _Reader, data: dict[str, Any]) -> ServerConfig:
    d = ServerConfig()
    return ServerConfig(
        host=r.string(data, "host", "server", d.host),
        port=r.integer(data, "port", "server", d.port),
        max_message_bytes=r.integer(data, "max_message_bytes", "server", d.max_message_bytes, 1024),
        grace_period_s=r.number(data, "grace_period_s", "server", d.grace_period_s),
        strict_plugins=r.boolean(data, "strict_plugins", "server", d.strict_plugins),
    )


def _routing(r: _Reader, data: dict[str, Any]) -> RoutingConfig:
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


def _execution(r: _Reader, data: dict[str, Any]) -> ExecutionConfig:
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


def _provider(r: _Reader, path: str, name: str, data: dict[str, Any]) -> ProviderConfig:
    known = {"type", "api_key_env", "base_url"}
    return ProviderConfig(
        name=name,
        type=r.string(data, "type", path, name),
        api_key_env=r.optional_string(data, "api_key_env", path),
        base_url=r.optional_string(data, "base_url", path),
        options={k: v for k, v in data.items() if k not in known},
    )


def _model(
    r: _Reader, path: str, data: dict[str, Any], providers: Mapping[str, ProviderConfig]
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


@dataclass(frozen=True, slots=True)
class StorageConfig:
    """The ``[storage]`` table: where hot shared state and the decision log live."""

    #: Budget counters and adaptive statistics: memory, sqlite, redis or postgres.
    hot: str = "memory"
    #: Durable decisions and feedback: memory, sqlite or postgres.
    log: str = "memory"
    sqlite_path: str = "~/.local/state/modelrouter/modelrouter.db"
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: Prefix of every Redis key, so several deployments can share one Redis.
    redis_prefix: str = "modelrouter"
    postgres_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    #: PostgreSQL schema holding the tables (created when missing).
    postgres_schema: str = "modelrouter"
    #: Log the last user turn with each decision (off: prompts never reach storage).
    log_prompts: bool = False


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    """Spend limits of one tenant, in USD per calendar window (UTC); ``None``: no limit."""

    hour_usd: float | None = None
    day_usd: float | None = None
    month_usd: float | None = None

    def by_window(self) -> dict[str, float]:
        windows = {"hour": self.hour_usd, "day": self.day_usd, "month": self.month_usd}
        return {w: v for w, v in windows.items() if v is not None}


@dataclass(frozen=True, slots=True)
class DegradeTier:
    """Below ``remaining_below`` (fraction of a window's budget left), lower the quality
    floor of every complexity to ``quality_floor`` so cheaper models become eligible."""

    remaining_below: float
    quality_floor: float


@dataclass(frozen=True, slots=True)
class BudgetsConfig:
    """The ``[budgets]`` table.

    ``[budgets.default]``, ``[budgets.tenants.NAME]`` and ``[[budgets.degrade]]``.
    """

    default: BudgetLimits = field(default_factory=BudgetLimits)
    tenants: Mapping[str, BudgetLimits] = field(default_factory=dict)
    #: Sorted by ``remaining_below``, largest first.
    degrade: tuple[DegradeTier, ...] = ()

    def limits_for(self, tenant: str) -> BudgetLimits:
        return self.tenants.get(tenant, self.default)


@dataclass(frozen=True, slots=True)
class ApiKey:
    tenant: str
    #: Hex SHA-256 of the key; the key itself is never stored.
    sha256: str


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """The ``[auth]`` table. Off: every call runs as tenant ``default``."""

    enabled: bool = False
    keys: tuple[ApiKey, ...] = ()
    #: PEM files for TLS; with ``tls_client_ca_file`` clients must present a certificate.
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_client_ca_file: str | None = None


@dataclass(frozen=True, slots=True)
class AdaptiveConfig:
    """The ``[adaptive]`` table: learn from feedback which eligible model to prefer."""

    #: On for every tenant; ``tenants`` turns it on for some only.
    enabled: bool = False
    tenants: frozenset[str] = frozenset()
    #: Share of requests (at most) that explore, in [0, 1].
    explore_fraction: float = 0.1
    #: Quality points one USD of estimated cost is worth (the price of quality).
    cost_weight: float = 100.0
    #: Pseudo-observations of the catalog quality each model starts with.
    prior_strength: float = 2.0

    def enabled_for(self, tenant: str) -> bool:
        return self.enabled or tenant in self.tenants


@dataclass(frozen=True, slots=True)
class StateConfig:
    storage: StorageConfig = field(default_factory=StorageConfig)
    budgets: BudgetsConfig = field(default_factory=BudgetsConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    adaptive: AdaptiveConfig = field(default_factory=AdaptiveConfig)


_HOT_BACKENDS = ("memory", "sqlite", "redis", "postgres")
_LOG_BACKENDS = ("memory", "sqlite", "postgres")


def _state(r: _Reader, data: dict[str, Any]) -> StateConfig:
    s = r.table(data, "storage")
    d = StorageConfig()
    _only(r, "storage", s, StorageConfig.__dataclass_fields__)
    storage = StorageConfig(
        hot=_choice(r, s, "hot", "storage", d.hot, _HOT_BACKENDS),
        log=_choice(r, s, "log", "storage", d.log, _LOG_BACKENDS),
        sqlite_path=r.string(s, "sqlite_path", "storage", d.sqlite_path),
        redis_url=r.string(s, "redis_url", "storage", d.redis_url),
        redis_prefix=r.string(s, "redis_prefix", "storage", d.redis_prefix),
        postgres_url=r.string(s, "postgres_url", "storage", d.postgres_url),
        postgres_schema=r.string(s, "postgres_schema", "storage", d.postgres_schema),
        log_prompts=r.boolean(s, "log_prompts", "storage", d.log_prompts),
    )
    b = r.table(data, "budgets")
    _only(r, "budgets", b, {"default", "tenants", "degrade"})
    tiers = []
    for i, entry in enumerate(r.array(b, "degrade")):
        path = f"budgets.degrade[{i}]"
        entry = r.table(entry, None, path)
        _only(r, path, entry, {"remaining_below", "quality_floor"})
        tiers.append(
            DegradeTier(
                r.number(entry, "remaining_below", path, high=1.0),
                r.number(entry, "quality_floor", path, high=1.0),
            )
        )
    budgets = BudgetsConfig(
        default=_limits(r, r.table(b, "default", "budgets.default"), "budgets.default"),
        tenants={
            name: _limits(r, r.table(t, None, f"budgets.tenants.{name}"), f"budgets.tenants.{name}")
            for name, t in r.table(b, "tenants", "budgets.tenants").items()
        },
        degrade=tuple(sorted(tiers, key=lambda t: -t.remaining_below)),
    )
    a = r.table(data, "auth")
    _only(r, "auth", a, AuthConfig.__dataclass_fields__)
    keys = []
    for i, entry in enumerate(r.array(a, "keys")):
        path = f"auth.keys[{i}]"
        entry = r.table(entry, None, path)
        digest = r.string(entry, "sha256", path).lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise r.fail(f"{path}.sha256", "64 hex digits (sha256 of the key)", digest)
        keys.append(ApiKey(r.string(entry, "tenant", path), digest))
    auth = AuthConfig(
        enabled=r.boolean(a, "enabled", "auth", False),
        keys=tuple(keys),
        tls_cert_file=r.optional_string(a, "tls_cert_file", "auth"),
        tls_key_file=r.optional_string(a, "tls_key_file", "auth"),
        tls_client_ca_file=r.optional_string(a, "tls_client_ca_file", "auth"),
    )
    if (auth.tls_cert_file is None) != (auth.tls_key_file is None):
        raise r.fail("auth.tls_key_file", "tls_cert_file and tls_key_file set together", a)
    if auth.enabled and not auth.keys:
        raise r.fail("auth.keys", "at least one [[auth.keys]] when auth.enabled = true", [])
    ad = r.table(data, "adaptive")
    da = AdaptiveConfig()
    _only(r, "adaptive", ad, AdaptiveConfig.__dataclass_fields__)
    adaptive = AdaptiveConfig(
        enabled=r.boolean(ad, "enabled", "adaptive", da.enabled),
        tenants=r.strings(ad, "tenants", "adaptive"),
        explore_fraction=r.number(
            ad, "explore_fraction", "adaptive", da.explore_fraction, high=1.0
        ),
        cost_weight=r.number(ad, "cost_weight", "adaptive", da.cost_weight),
        prior_strength=r.number(ad, "prior_strength", "adaptive", da.prior_strength, low=0.001),
    )
    return StateConfig(storage, budgets, auth, adaptive)


def _only(r: _Reader, path: str, data: dict[str, Any], known: Any) -> None:
    for key in data:
        if key not in known:
            raise r.fail(f"{path}.{key}", f"one of {', '.join(sorted(known))}", key)


def _choice(
    r: _Reader, data: dict[str, Any], key: str, path: str, default: str, choices: tuple[str, ...]
) -> str:
    value = r.string(data, key, path, default)
    if value not in choices:
        raise r.fail(f"{path}.{key}", f"one of {', '.join(choices)}", value)
    return value


def _limits(r: _Reader, data: dict[str, Any], path: str) -> BudgetLimits:
    _only(r, path, data, {"hour_usd", "day_usd", "month_usd"})
    values = {
        k: r.number(data, k, path) if k in data else None
        for k in ("hour_usd", "day_usd", "month_usd")
    }
    return BudgetLimits(**values)


@dataclass(frozen=True, slots=True)
class TelemetryConfig:
    """The ``[telemetry]`` table. Standard ``OTEL_*`` variables override it (docs/telemetry.md)."""

    #: ``service.name`` of every span and metric.
    service_name: str = "modelrouter"
    #: Record prompt and completion text on spans. Off: text never leaves the process.
    capture_content: bool = False
    #: OTLP collector, for example ``http://collector:4317`` (grpc) or ``http://collector:4318``
    #: (http). Unset: no OTLP export.
    otlp_endpoint: str | None = None
    #: ``grpc`` (OTLP/gRPC) or ``http`` (OTLP/HTTP with protobuf bodies).
    otlp_protocol: str = "grpc"
    #: Extra headers sent with every export (for example an API key of the backend).
    otlp_headers: Mapping[str, str] = field(default_factory=dict)
    #: Export traces / metrics over OTLP when an endpoint is set.
    export_traces: bool = True
    export_metrics: bool = True
    #: Seconds between metric exports over OTLP.
    metric_export_interval_s: float = 60.0
    #: Serve Prometheus metrics on this port (``0``: any free port). Unset: no endpoint.
    prometheus_port: int | None = None
    prometheus_host: str = "127.0.0.1"
    #: Fraction of new traces sampled, in [0, 1]; a caller's sampled flag is always honoured.
    sample_ratio: float = 1.0


_OTLP_PROTOCOLS = ("grpc", "http")


def _telemetry(r: _Reader, data: dict[str, Any]) -> TelemetryConfig:
    d = TelemetryConfig()
    _only(r, "telemetry", data, TelemetryConfig.__dataclass_fields__)
    headers = r.table(data, "otlp_headers", "telemetry.otlp_headers")
    for key, value in headers.items():
        if not isinstance(value, str):
            raise r.fail(f"telemetry.otlp_headers.{key}", "a string", value)
    port = data.get("prometheus_port")
    if port is not None:
        port = r.integer(data, "prometheus_port", "telemetry")
        if port > 65535:
            raise r.fail("telemetry.prometheus_port", "a port number in [0, 65535]", port)
    return TelemetryConfig(
        service_name=r.string(data, "service_name", "telemetry", d.service_name),
        capture_content=r.boolean(data, "capture_content", "telemetry", d.capture_content),
        otlp_endpoint=r.optional_string(data, "otlp_endpoint", "telemetry"),
        otlp_protocol=_choice(
            r, data, "otlp_protocol", "telemetry", d.otlp_protocol, _OTLP_PROTOCOLS
        ),
        otlp_headers=dict(headers),
        export_traces=r.boolean(data, "export_traces", "telemetry", d.export_traces),
        export_metrics=r.boolean(data, "export_metrics", "telemetry", d.export_metrics),
        metric_export_interval_s=r.number(
            data, "metric_export_interval_s", "telemetry", d.metric_export_interval_s, low=0.001
        ),
        prometheus_port=port,
        prometheus_host=r.string(data, "prometheus_host", "telemetry", d.prometheus_host),
        sample_ratio=r.number(data, "sample_ratio", "telemetry", d.sample_ratio, high=1.0),
    )
