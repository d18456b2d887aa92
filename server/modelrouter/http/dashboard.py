"""The operator dashboard: one page, its assets, and the JSON it polls.

The page (``static/``, shipped in the package; no CDN) polls ``/dashboard/data`` every few
seconds with the operator's API key and draws its charts as SVG. What the data holds:
calls and cost per minute (the stats timeline), the saving against always choosing the
strongest eligible model, the model mix, the complexity tiers of the recent decisions,
latency percentiles per method, failover and error rates, budgets per tenant, live routing
quality from shadow evaluation (when ``[shadow]`` is on) and the most recent decisions with
their reasons. A tenant sees its own; an admin tenant
(``[http] admin_tenants``), or anyone with auth off, sees every tenant.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from functools import cache
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..config import Config
from ..shadow import ShadowStats
from ..state import StateServices
from ..telemetry.stats import Stats

#: Decisions read for the tier mix; the newest of them are listed.
RECENT_SAMPLE = 500
RECENT_LISTED = 25
#: Minutes drawn in the time charts.
MINUTES = 60
#: Tenants whose budgets are listed, at most.
MAX_TENANTS = 50
_TIERS = ("SIMPLE", "MODERATE", "COMPLEX", "EXPERT")
_ASSETS = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
#: Everything from this origin, nothing from anywhere else.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


async def data(
    stats: Stats,
    state: StateServices,
    config: Config,
    *,
    tenant: str | None,
    viewer: str,
    shadow: ShadowStats | None = None,
) -> dict[str, Any]:
    """The dashboard's data for ``tenant`` (``None``: every tenant); ``shadow``: live
    quality figures of shadow evaluation, when it is on."""
    scoped = stats if tenant is None else stats.for_tenant(tenant)
    snap = scoped.snapshot()
    now = time.time()
    timeline = scoped.timeline
    buckets = timeline.buckets(now)[-MINUTES:]
    recent = await state.decisions.recent(tenant, RECENT_SAMPLE)
    tiers = Counter(d.complexity.upper() for d in recent)
    errors = sum(m.client_errors + m.server_errors for m in snap.methods)
    server_errors = sum(m.server_errors for m in snap.methods)
    saving = snap.estimated_saving_usd
    if tenant is None:
        names = set(config.state.budgets.tenants) | set(stats.tenants())
        names |= {key.tenant for key in config.state.auth.keys}
        if config.state.auth.enabled:
            # With auth on, "default" only counts refused (unauthenticated) calls.
            names.discard("default")
        tenants = sorted(names)[:MAX_TENANTS] or ["default"]
    else:
        tenants = [tenant]
    budgets = []
    for name in tenants:
        windows = await state.budgets.usage(name)
        budgets.append(
            {
                "tenant": name,
                "windows": [
                    {
                        "window": w.window,
                        "limit_usd": w.limit_usd,
                        "spent_usd": w.spent_usd,
                        "reserved_usd": w.reserved_usd,
                        "remaining_usd": w.remaining_usd,
                        "resets_at": w.resets_at.isoformat(),
                    }
                    for w in windows
                ],
            }
        )
    return {
        "scope": "all" if tenant is None else "tenant",
        "viewer": viewer,
        "generated_at": now,
        "uptime_s": snap.uptime_s,
        "totals": {
            "requests": snap.requests,
            "succeeded": snap.succeeded,
            "errors": errors,
            "server_errors": server_errors,
            "error_rate": errors / snap.requests if snap.requests else 0.0,
            "decisions": snap.decisions,
            "executions": snap.executions,
            "cost_usd": snap.cost_usd,
            "estimated_cost_usd": snap.estimated_cost_usd,
            "strongest_estimated_cost_usd": snap.strongest_estimated_cost_usd,
            "saving_usd": saving,
            "saving_ratio": (
                saving / snap.strongest_estimated_cost_usd
                if snap.strongest_estimated_cost_usd
                else 0.0
            ),
            "fallbacks": snap.fallbacks,
            "retries": snap.retries,
            "failover_rate": snap.fallbacks / snap.executions if snap.executions else 0.0,
        },
        "timeline": {
            "bucket_s": timeline.bucket_s,
            "buckets": [
                {
                    "t": b.start,
                    "requests": b.requests,
                    "errors": b.client_errors + b.server_errors,
                    "cost_usd": b.cost_usd,
                    "saving_usd": b.strongest_estimated_cost_usd - b.estimated_cost_usd,
                    "fallbacks": b.fallbacks,
                }
                for b in buckets
            ],
        },
        "models": [
            {
                "model": m.model,
                "selected": m.selected,
                "answered": m.answered,
                "cost_usd": m.cost_usd,
                "input_tokens": m.input_tokens,
                "output_tokens": m.output_tokens,
            }
            for m in snap.models
        ],
        "tiers": {
            "sample": len(recent),
            "counts": [{"tier": t.lower(), "count": tiers.get(t, 0)} for t in _TIERS],
        },
        "latency": [
            {
                "method": m.method,
                "requests": m.requests,
                "p50_ms": m.latency.percentile(0.5),
                "p90_ms": m.latency.percentile(0.9),
                "p99_ms": m.latency.percentile(0.99),
                "mean_ms": m.latency.total_ms / m.latency.count if m.latency.count else 0.0,
            }
            for m in snap.methods
            if m.requests
        ],
        "budgets": budgets,
        "shadow": None
        if shadow is None
        else {
            "cost_usd": shadow.cost_usd(tenant),
            "skipped": shadow.skipped(tenant),
            "quality": [dataclasses.asdict(q) for q in shadow.snapshot(tenant)],
        },
        "recent": [
            {
                "decision_id": d.decision_id,
                "created_at": d.created_at,
                "tenant": d.tenant,
                "kind": d.kind,
                "model": d.chosen_model,
                "complexity": d.complexity.lower(),
                "task_type": d.task_type.lower(),
                "reason": d.reason,
                "estimated_cost_usd": d.estimated_cost_usd,
                "actual_cost_usd": d.actual_cost_usd,
                "latency_ms": d.latency_ms,
                "outcome": d.outcome,
            }
            for d in recent[:RECENT_LISTED]
        ],
    }


@cache
def _asset(name: str) -> bytes:
    return (resources.files(__package__) / "static" / name).read_bytes()


def page_routes() -> list[Route]:
    """``/`` and ``/dashboard`` (the page) and its two assets; no auth (they hold no data)."""

    async def page(request: Request) -> Response:
        return Response(
            _asset("dashboard.html"),
            media_type="text/html; charset=utf-8",
            headers={"content-security-policy": _CSP, "cache-control": "no-cache"},
        )

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        media_type = _ASSETS.get(name)
        if media_type is None:
            return Response(
                b'{"error": {"message": "no such asset", "type": "not_found_error", '
                b'"param": null, "code": "unknown_url"}}',
                404,
                media_type="application/json",
            )
        return Response(_asset(name), media_type=media_type, headers={"cache-control": "no-cache"})

    return [
        Route("/", page, methods=["GET"]),
        Route("/dashboard", page, methods=["GET"]),
        Route("/dashboard/static/{name}", asset, methods=["GET"]),
    ]
