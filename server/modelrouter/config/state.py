"""The ``[storage]``, ``[budgets]``, ``[auth]`` and ``[adaptive]`` tables.

In the file they are top-level tables; in Python they sit together under ``Config.state``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator
from pydantic.dataclasses import dataclass
from pydantic_core import PydanticCustomError

from .fields import TABLE, Flag, Fraction, Int, Number, Text

__all__ = [
    "AdaptiveConfig",
    "ApiKey",
    "AuthConfig",
    "BudgetLimits",
    "BudgetsConfig",
    "DegradeTier",
    "StateConfig",
    "StorageConfig",
]


@dataclass(frozen=True, slots=True, config=TABLE)
class StorageConfig:
    """The ``[storage]`` table: where hot shared state and the decision log live."""

    hot: Literal["memory", "sqlite", "redis", "postgres"] = Field(
        default="memory", description="Store of budget counters, adaptive statistics and sessions."
    )
    log: Literal["memory", "sqlite", "postgres"] = Field(
        default="memory", description="Store of the durable decision log and feedback."
    )
    sqlite_path: Text = Field(
        default="~/.local/state/modelrouter/modelrouter.db",
        description="SQLite database file (`:memory:` keeps it in the process).",
    )
    redis_url: Text = Field(
        default="redis://127.0.0.1:6379/0", description='Redis server of `hot = "redis"`.'
    )
    redis_prefix: Text = Field(
        default="modelrouter",
        description="Prefix of every Redis key, so deployments can share one Redis.",
    )
    postgres_url: Text = Field(
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        description="PostgreSQL connection URL.",
    )
    postgres_schema: Text = Field(
        default="modelrouter",
        description="PostgreSQL schema holding the tables (created when missing).",
    )
    log_prompts: Flag = Field(
        default=False,
        description="Log the last user turn with each decision (off: prompts never stored).",
    )
    retention_days: Int = Field(
        default=30,
        ge=1,
        description="Days a decision and its feedback stay in the log before the sweep.",
    )
    retention_sweep_batch: Int = Field(
        default=1000, ge=1, description="Decisions deleted per statement by the retention sweep."
    )


@dataclass(frozen=True, slots=True, config=TABLE)
class BudgetLimits:
    """Spend limits of one tenant, in USD per calendar window (UTC); unset: no limit."""

    hour_usd: Number | None = Field(
        default=None, ge=0.0, description="USD per calendar hour (UTC)."
    )
    day_usd: Number | None = Field(default=None, ge=0.0, description="USD per calendar day (UTC).")
    month_usd: Number | None = Field(
        default=None, ge=0.0, description="USD per calendar month (UTC)."
    )

    def by_window(self) -> dict[str, float]:
        windows = {"hour": self.hour_usd, "day": self.day_usd, "month": self.month_usd}
        return {w: v for w, v in windows.items() if v is not None}


@dataclass(frozen=True, slots=True, config=TABLE)
class DegradeTier:
    """Below ``remaining_below`` (fraction of a window's budget left), lower the quality
    floor of every complexity to ``quality_floor`` so cheaper models become eligible."""

    remaining_below: Fraction = Field(description="Fraction of a window's budget left.")
    quality_floor: Fraction = Field(description="Quality floor of every complexity below it.")


def _largest_first(tiers: tuple[DegradeTier, ...]) -> tuple[DegradeTier, ...]:
    return tuple(sorted(tiers, key=lambda t: -t.remaining_below))


@dataclass(frozen=True, slots=True, config=TABLE)
class BudgetsConfig:
    """The ``[budgets]`` table: spend limits per tenant and what routing does as they run low.

    ``[budgets.default]``, ``[budgets.tenants.NAME]`` and ``[[budgets.degrade]]``.
    """

    default: BudgetLimits = Field(
        default_factory=BudgetLimits, description="Limits of every tenant not listed in `tenants`."
    )
    tenants: Mapping[Text, BudgetLimits] = Field(
        default_factory=dict, description="Limits of named tenants (`[budgets.tenants.NAME]`)."
    )
    #: Sorted by ``remaining_below``, largest first.
    degrade: Annotated[tuple[DegradeTier, ...], AfterValidator(_largest_first)] = Field(
        default=(),
        description="Quality floors that apply as a budget runs low (`[[budgets.degrade]]`).",
    )
    max_in_flight_per_tenant: Int = Field(
        default=64, ge=1, description="Budget reservations one tenant may hold at once."
    )

    def limits_for(self, tenant: str) -> BudgetLimits:
        return self.tenants.get(tenant, self.default)


def _hex_digest(value: object) -> object:
    if isinstance(value, str):
        value = value.lower()
        if len(value) == 64 and all(c in "0123456789abcdef" for c in value):
            return value
    raise PydanticCustomError("config_choice", "64 hex digits (sha256 of the key)")


@dataclass(frozen=True, slots=True, config=TABLE)
class ApiKey:
    """One ``[[auth.keys]]`` entry."""

    tenant: Text = Field(description="Tenant the key's calls run as.")
    #: Hex SHA-256 of the key; the key itself is never stored.
    sha256: Annotated[str, BeforeValidator(_hex_digest)] = Field(
        description="Hex SHA-256 of the key (`modelrouter hash-key KEY`); never the key itself.",
        json_schema_extra={"type_doc": "64 hex digits"},
    )


@dataclass(frozen=True, slots=True, config=TABLE)
class AuthConfig:
    """The ``[auth]`` table. Off: every call runs as tenant ``default``."""

    enabled: Flag = Field(default=False, description="Require an API key on every call.")
    keys: tuple[ApiKey, ...] = Field(default=(), description="Accepted keys (`[[auth.keys]]`).")
    tls_cert_file: Text | None = Field(
        default=None, description="PEM certificate chain; turns TLS on."
    )
    tls_key_file: Text | None = Field(
        default=None, description="PEM private key of `tls_cert_file`."
    )
    tls_client_ca_file: Text | None = Field(
        default=None, description="PEM CA bundle; when set, clients must present a certificate."
    )
    allow_unauthenticated: Flag = Field(
        default=False, description="Serve a non-loopback address with auth off (refused otherwise)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> AuthConfig:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise PydanticCustomError(
                "config_rule", "tls_key_file: tls_cert_file and tls_key_file are set together"
            )
        if self.enabled and not self.keys:
            raise PydanticCustomError(
                "config_rule", "keys: at least one [[auth.keys]] when auth.enabled = true"
            )
        return self


@dataclass(frozen=True, slots=True, config=TABLE)
class AdaptiveConfig:
    """The ``[adaptive]`` table: learn from feedback which eligible model to prefer."""

    enabled: Flag = Field(default=False, description="Adaptive routing for every tenant.")
    tenants: frozenset[Text] = Field(
        default=frozenset(), description="Tenants with adaptive routing when `enabled` is false."
    )
    explore_fraction: Fraction = Field(
        default=0.1, description="Share of requests (at most) that try a model other than the best."
    )
    cost_weight: Number = Field(
        default=100.0, ge=0.0, description="Quality points one USD of estimated cost is worth."
    )
    prior_strength: Number = Field(
        default=2.0,
        ge=0.001,
        description="Pseudo-observations of catalog quality each model starts with.",
    )
    pool_tenants: Flag = Field(
        default=False, description="Learn from all tenants' feedback together (off: per tenant)."
    )

    def enabled_for(self, tenant: str) -> bool:
        return self.enabled or tenant in self.tenants


@dataclass(frozen=True, slots=True, config=TABLE)
class StateConfig:
    storage: StorageConfig = Field(default_factory=StorageConfig)
    budgets: BudgetsConfig = Field(default_factory=BudgetsConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    adaptive: AdaptiveConfig = Field(default_factory=AdaptiveConfig)
