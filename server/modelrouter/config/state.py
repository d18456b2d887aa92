"""The ``[storage]``, ``[budgets]``, ``[auth]`` and ``[adaptive]`` tables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .reader import Reader


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


def parse_state(r: Reader, data: dict[str, Any]) -> StateConfig:
    s = r.table(data, "storage")
    d = StorageConfig()
    r.only("storage", s, StorageConfig.__dataclass_fields__)
    storage = StorageConfig(
        hot=r.choice(s, "hot", "storage", d.hot, _HOT_BACKENDS),
        log=r.choice(s, "log", "storage", d.log, _LOG_BACKENDS),
        sqlite_path=r.string(s, "sqlite_path", "storage", d.sqlite_path),
        redis_url=r.string(s, "redis_url", "storage", d.redis_url),
        redis_prefix=r.string(s, "redis_prefix", "storage", d.redis_prefix),
        postgres_url=r.string(s, "postgres_url", "storage", d.postgres_url),
        postgres_schema=r.string(s, "postgres_schema", "storage", d.postgres_schema),
        log_prompts=r.boolean(s, "log_prompts", "storage", d.log_prompts),
    )
    b = r.table(data, "budgets")
    r.only("budgets", b, {"default", "tenants", "degrade"})
    tiers = []
    for i, entry in enumerate(r.array(b, "degrade")):
        path = f"budgets.degrade[{i}]"
        entry = r.table(entry, None, path)
        r.only(path, entry, {"remaining_below", "quality_floor"})
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
    r.only("auth", a, AuthConfig.__dataclass_fields__)
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
    r.only("adaptive", ad, AdaptiveConfig.__dataclass_fields__)
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


def _limits(r: Reader, data: dict[str, Any], path: str) -> BudgetLimits:
    r.only(path, data, {"hour_usd", "day_usd", "month_usd"})
    values = {
        k: r.number(data, k, path) if k in data else None
        for k in ("hour_usd", "day_usd", "month_usd")
    }
    return BudgetLimits(**values)
