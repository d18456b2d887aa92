"""In-process aggregates since the server started, for GetStats and ``modelrouter stats``.

Only what was observed is reported: calls, their outcome and latency, the decisions made,
what executions actually cost, and the estimated saving against always choosing the
strongest eligible model. Memory is bounded: latencies go into log-spaced buckets
(percentiles within 2 %), not a list.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..decision import Candidate, Selection
from .timeline import Timeline

#: The calls that handle a request; catalog and admin calls are not counted.
REQUEST_METHODS = ("Classify", "Route", "Execute", "ExecuteStream")


class LatencyHistogram:
    """Counts in buckets growing by 2 %: percentiles are bucket upper bounds (<= 2 % high)."""

    RATIO = 1.02
    SMALLEST_MS = 0.001

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()
        self.count = 0
        self.total_ms = 0.0

    def add(self, ms: float) -> None:
        index = (
            0 if ms <= self.SMALLEST_MS else math.ceil(math.log(ms / self.SMALLEST_MS, self.RATIO))
        )
        self.counts[index] += 1
        self.count += 1
        self.total_ms += ms

    def percentile(self, q: float) -> float:
        """The ``q``-quantile (``q`` in [0, 1]) in milliseconds; 0 with no samples."""
        if not self.count:
            return 0.0
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                return self.SMALLEST_MS * self.RATIO**index
        raise AssertionError("unreachable")


@dataclass(slots=True)
class MethodStats:
    method: str
    requests: int = 0
    succeeded: int = 0
    client_errors: int = 0
    server_errors: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)


@dataclass(slots=True)
class ModelStats:
    model: str
    #: Decisions that chose it first.
    selected: int = 0
    #: Executions it answered.
    answered: int = 0
    #: Actual cost of every call to it, in USD.
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(slots=True)
class StatsSnapshot:
    started_at: float
    uptime_s: float
    methods: list[MethodStats]
    models: list[ModelStats]
    decisions: int
    executions: int
    cost_usd: float
    estimated_cost_usd: float
    strongest_estimated_cost_usd: float
    fallbacks: int
    retries: int

    @property
    def requests(self) -> int:
        return sum(m.requests for m in self.methods)

    @property
    def succeeded(self) -> int:
        return sum(m.succeeded for m in self.methods)

    @property
    def estimated_saving_usd(self) -> float:
        return self.strongest_estimated_cost_usd - self.estimated_cost_usd


def strongest(candidates: Iterable[Candidate]) -> Candidate:
    """The highest-quality candidate; among equals, the most expensive."""
    return max(candidates, key=lambda c: (c.quality, c.estimated_cost_usd))


class Stats:
    """Aggregates of this process, overall and per tenant.

    Every ``record_*`` call counts towards the whole server and towards its tenant, so a
    tenant's ``GetStats`` (with auth on) shows its own traffic only. Not thread-safe: fed
    from the server's event loop.
    """

    def __init__(self, clock: Callable[[], float] = time.time, *, per_tenant: bool = True) -> None:
        self._clock = clock
        self._tenants: dict[str, Stats] | None = {} if per_tenant else None
        self._targets: dict[str, tuple[Stats, Stats]] = {}
        self.started_at = clock()
        self._methods = {m: MethodStats(m) for m in REQUEST_METHODS}
        self._models: dict[str, ModelStats] = {}
        self.decisions = 0
        self.executions = 0
        self.cost_usd = 0.0
        self.estimated_cost_usd = 0.0
        self.strongest_estimated_cost_usd = 0.0
        self.fallbacks = 0
        self.retries = 0
        #: Recent traffic per minute (the dashboard's charts).
        self.timeline = Timeline()

    def _model(self, name: str) -> ModelStats:
        stats = self._models.get(name)
        if stats is None:
            stats = self._models[name] = ModelStats(name)
        return stats

    def for_tenant(self, tenant: str) -> Stats:
        """The aggregates of one tenant's calls (empty for a tenant not seen yet)."""
        if self._tenants is None:
            return self
        stats = self._tenants.get(tenant)
        if stats is None:
            stats = self._tenants[tenant] = Stats(self._clock, per_tenant=False)
            stats.started_at = self.started_at
        return stats

    def tenants(self) -> list[str]:
        """The tenants seen so far, sorted."""
        return sorted(self._tenants or ())

    def _and_tenant(self, tenant: str) -> tuple[Stats, ...]:
        if self._tenants is None:
            return (self,)
        # Built once per tenant: every call records twice, so this is on the hot path.
        targets = self._targets.get(tenant)
        if targets is None:
            targets = self._targets[tenant] = (self, self.for_tenant(tenant))
        return targets

    def record_call(
        self, method: str, outcome: str, latency_ms: float, tenant: str = "default"
    ) -> None:
        """One call ended. ``outcome``: ``ok``, ``client_error`` or ``server_error``."""
        for target in self._and_tenant(tenant):
            target._record_call(method, outcome, latency_ms)

    def _record_call(self, method: str, outcome: str, latency_ms: float) -> None:
        stats = self._methods.get(method)
        if stats is None:
            return
        stats.requests += 1
        stats.latency.add(latency_ms)
        bucket = self.timeline.at(self._clock())
        bucket.requests += 1
        if outcome == "ok":
            stats.succeeded += 1
        elif outcome == "client_error":
            stats.client_errors += 1
            bucket.client_errors += 1
        else:
            stats.server_errors += 1
            bucket.server_errors += 1

    def record_decision(self, selection: Selection, tenant: str = "default") -> None:
        """A request was routed (by Route, Execute or ExecuteStream)."""
        selected = selection.selected
        strongest_cost = strongest(selection.candidates).estimated_cost_usd
        for target in self._and_tenant(tenant):
            target._record_decision(selected, strongest_cost)

    def _record_decision(self, selected: Candidate, strongest_cost_usd: float) -> None:
        self.decisions += 1
        self._model(selected.model.name).selected += 1
        self.estimated_cost_usd += selected.estimated_cost_usd
        self.strongest_estimated_cost_usd += strongest_cost_usd
        bucket = self.timeline.at(self._clock())
        bucket.estimated_cost_usd += selected.estimated_cost_usd
        bucket.strongest_estimated_cost_usd += strongest_cost_usd

    def record_attempt(
        self,
        model: str,
        cost_usd: float,
        input_tokens: int,
        output_tokens: int,
        *,
        fallback: bool,
        retry: bool,
        tenant: str = "default",
    ) -> None:
        for target in self._and_tenant(tenant):
            target._record_attempt(model, cost_usd, input_tokens, output_tokens, fallback, retry)

    def _record_attempt(
        self,
        model: str,
        cost_usd: float,
        input_tokens: int,
        output_tokens: int,
        fallback: bool,
        retry: bool,
    ) -> None:
        stats = self._model(model)
        stats.cost_usd += cost_usd
        stats.input_tokens += input_tokens
        stats.output_tokens += output_tokens
        self.cost_usd += cost_usd
        self.fallbacks += fallback
        self.retries += retry
        bucket = self.timeline.at(self._clock())
        bucket.cost_usd += cost_usd
        bucket.fallbacks += fallback

    def record_execution(self, answered_by: str, tenant: str = "default") -> None:
        """An execution ended; ``answered_by`` is empty when every attempt failed."""
        for target in self._and_tenant(tenant):
            target._record_execution(answered_by)

    def _record_execution(self, answered_by: str) -> None:
        self.executions += 1
        if answered_by:
            self._model(answered_by).answered += 1

    def snapshot(self) -> StatsSnapshot:
        now = self._clock()
        return StatsSnapshot(
            started_at=self.started_at,
            uptime_s=now - self.started_at,
            methods=list(self._methods.values()),
            models=sorted(self._models.values(), key=lambda m: (-m.selected, m.model)),
            decisions=self.decisions,
            executions=self.executions,
            cost_usd=self.cost_usd,
            estimated_cost_usd=self.estimated_cost_usd,
            strongest_estimated_cost_usd=self.strongest_estimated_cost_usd,
            fallbacks=self.fallbacks,
            retries=self.retries,
        )
