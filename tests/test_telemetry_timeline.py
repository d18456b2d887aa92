"""The per-minute timeline the dashboard draws: calls, errors, cost and saving land in the
minute they happened, per tenant and overall; gaps read as empty minutes; memory is fixed."""

from __future__ import annotations

from modelrouter.telemetry.stats import Stats
from modelrouter.telemetry.timeline import Timeline


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_calls_and_cost_land_in_their_minute_per_tenant_and_overall():
    clock = Clock(1_000_040.0)  # 20 s into the minute that starts at 1_000_020
    stats = Stats(clock)
    stats.record_call("Execute", "ok", 10.0, "acme")
    stats.record_attempt("tiny", 0.25, 10, 5, fallback=False, retry=False, tenant="acme")
    clock.now += 60
    stats.record_call("Execute", "server_error", 10.0, "globex")
    stats.record_call("Route", "client_error", 1.0, "acme")
    stats.record_attempt("large", 1.5, 10, 5, fallback=True, retry=False, tenant="globex")

    overall = [b for b in stats.timeline.buckets(clock.now) if b.requests]
    assert [(b.start, b.requests, b.client_errors, b.server_errors) for b in overall] == [
        (1_000_020.0, 1, 0, 0),  # floored to the minute
        (1_000_080.0, 2, 1, 1),
    ]
    assert [b.cost_usd for b in overall] == [0.25, 1.5]
    assert overall[1].fallbacks == 1
    acme = [b for b in stats.for_tenant("acme").timeline.buckets(clock.now) if b.requests]
    assert [(b.requests, b.cost_usd) for b in acme] == [(1, 0.25), (1, 0.0)]
    assert stats.tenants() == ["acme", "globex"]


def test_timeline_keeps_only_its_capacity_and_fills_gaps():
    timeline = Timeline(bucket_s=10, capacity=3)
    for t in (0, 10, 20, 30, 40):
        timeline.at(t).requests += 1
    buckets = timeline.buckets(60)  # 40..60: 40 has traffic, 50 and 60 do not
    assert [(b.start, b.requests) for b in buckets] == [(40, 1), (50, 0), (60, 0)]
    assert len(timeline._buckets) == 3
    # A clock that steps back counts in the newest bucket instead of reordering.
    timeline.at(35).requests += 1
    assert timeline.buckets(40)[-1].requests == 2
