"""Stage 3, select: which models may answer, in which order, and why.

The catalog's models go through the selection policy (:mod:`modelrouter.selection`: each
rule removes the models that fail it, the survivors ordered cheapest first); then the
tenant's budget and the adaptive policy steer the order; a model the caller named
explicitly goes first. The result is one :class:`~modelrouter.decision.Decision`.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable

from ..catalog import Catalog
from ..config import ModelSpec, RoutingConfig
from ..decision import Candidate, Decision, Selection
from ..errors import BudgetExhausted, NoEligibleModel
from ..selection import select
from ..state import StateServices
from ..tokens import estimate_request_tokens
from ..types import Classification, RoutingRequest


class Select:
    def __init__(self, catalog: Catalog, routing: RoutingConfig, state: StateServices) -> None:
        self.catalog = catalog
        self.routing = routing
        self.state = state
        #: The catalog is fixed once built: one tuple for every selection.
        self._models = tuple(catalog.models.values())

    async def __call__(
        self, request: RoutingRequest, classification: Classification, *, executing: bool
    ) -> Decision:
        """The decision for ``request``; ``request.model``, when set, is tried first.

        ``executing``: this server will call the models. Route alone (``False``) may choose
        a model whose API key this server lacks: the caller may hold it.
        """
        decision_id = str(uuid.uuid4())
        unavailable = (
            self.catalog.unavailable_reason
            if executing
            else self.catalog.routing_unavailable_reason
        )
        # Estimated once: selection may run twice (a budget degrades it) and an explicit
        # model's window is checked against the same figure.
        input_tokens = estimate_request_tokens(request)
        if request.model is None:
            selection, explored = await self._by_policy(
                request, classification, unavailable, input_tokens
            )
            if request.session_id is not None:
                selection = await self._keep_session(request, classification, selection)
            return Decision(decision_id, classification, selection, explored)
        spec = self.catalog.get(request.model)
        self.catalog.provider_for(spec)  # raises ModelUnavailable naming the missing variable
        _check_explicit(spec, request, input_tokens + self._max_output_tokens(request))
        try:
            selection, explored = await self._by_policy(
                request, classification, unavailable, input_tokens
            )
        except NoEligibleModel as exc:
            # The caller named a model, so the policy leaving no fallbacks is not an error.
            output_tokens = self._max_output_tokens(request)
            selection = Selection(
                selected=_candidate(spec, classification, input_tokens, output_tokens),
                fallbacks=(),
                reason=f"model {spec.name} requested explicitly; no fallbacks ({exc})",
                input_tokens=input_tokens,
                max_output_tokens=output_tokens,
            )
            return Decision(decision_id, classification, selection)
        chosen = next((c for c in selection.candidates if c.model.name == spec.name), None)
        if chosen is None:
            chosen = _candidate(
                spec, classification, selection.input_tokens, selection.max_output_tokens
            )
        fallbacks = tuple(c for c in selection.candidates if c.model.name != spec.name)
        names = ", ".join(c.model.name for c in fallbacks) or "none"
        reason = f"model {spec.name} requested explicitly; fallbacks by policy: {names}"
        selection = dataclasses.replace(
            selection, selected=chosen, fallbacks=fallbacks, reason=reason
        )
        return Decision(decision_id, classification, selection, explored)

    def _max_output_tokens(self, request: RoutingRequest) -> int:
        return request.constraints.max_output_tokens or self.routing.default_max_output_tokens

    async def _keep_session(
        self, request: RoutingRequest, classification: Classification, selection: Selection
    ) -> Selection:
        """Sessions keep their model from turn to turn (and the provider's prompt cache
        with it) while it can serve the turn; when it cannot, the session moves up, never
        down: to the cheapest eligible model at least as good as the one it had."""
        key = session_key(request)
        stuck = await self.state.hot.session_model(key, time.time())
        if stuck is None:
            return selection
        candidates = selection.candidates
        kept = next((c for c in candidates if c.model.name == stuck), None)
        if kept is not None:
            rest = tuple(c for c in candidates if c is not kept)
            return dataclasses.replace(
                selection,
                selected=kept,
                fallbacks=rest,
                reason=f"session affinity: the session stays on {stuck}; {selection.reason}",
            )
        spec = self.catalog.models.get(stuck)
        floor = spec.quality_for(classification.task_type) if spec is not None else 0.0
        better = [c for c in candidates if c.quality >= floor]
        if not better:
            better = sorted(candidates, key=lambda c: -c.quality)[:1]
        moved = better[0]
        rest = tuple(c for c in candidates if c is not moved)
        reason = (
            f"session moved from {stuck} (it cannot serve this turn) to {moved.model.name}, "
            f"not below its quality; {selection.reason}"
        )
        return dataclasses.replace(selection, selected=moved, fallbacks=rest, reason=reason)

    async def _by_policy(
        self,
        request: RoutingRequest,
        classification: Classification,
        unavailable: Callable[[ModelSpec], str | None],
        input_tokens: int,
    ) -> tuple[Selection, bool]:
        """The policy's selection, steered by the tenant's budget and the adaptive policy.

        Raises ``BudgetExhausted`` when no eligible model fits what is left of the budget.
        """

        def policy(request: RoutingRequest, routing: RoutingConfig) -> Selection:
            return select(
                request,
                classification,
                self._models,
                routing,
                unavailable,
                self.catalog.cooling_reason,
                input_tokens,
            )

        selection = policy(request, self.routing)
        budgets, adaptive = self.state.budgets, self.state.adaptive
        tenant = request.tenant
        notes: list[str] = []
        usage = await budgets.usage(tenant) if budgets.has_limits(tenant) else []
        exhausted = budgets.exhausted(tenant, usage)
        if exhausted is not None:
            raise exhausted
        degraded = budgets.degrade_tier(usage)
        if degraded is not None:
            # Degrade before reject: lower the quality floors to the tier's and drop the
            # caller's willingness to pay, so that the cheapest adequate model leads.
            tier, window = degraded
            floors = {
                level: min(q, tier.quality_floor) for level, q in self.routing.min_quality.items()
            }
            cheaper = dataclasses.replace(
                request,
                constraints=dataclasses.replace(request.constraints, willingness_to_pay=None),
            )
            selection = policy(cheaper, dataclasses.replace(self.routing, min_quality=floors))
            notes.append(
                f"budget degraded: {window.remaining_fraction:.0%} of the {window.window} budget "
                f"left (< {tier.remaining_below:.0%}), "
                f"quality floor lowered to {tier.quality_floor:.2f}"
            )
        if usage:
            tightest = min(usage, key=lambda u: u.remaining_usd)
            fits = [
                c for c in selection.candidates if c.estimated_cost_usd <= tightest.remaining_usd
            ]
            if not fits:
                raise BudgetExhausted(
                    tenant, tightest.window, tightest.limit_usd, tightest.resets_at
                )
            if len(fits) < len(selection.candidates):
                notes.append(
                    f"budget: {len(selection.candidates) - len(fits)} model(s) cost more than the "
                    f"${tightest.remaining_usd:.6f} left in the {tightest.window} budget"
                )
                selection = dataclasses.replace(
                    selection, selected=fits[0], fallbacks=tuple(fits[1:])
                )
        explored = False
        if adaptive.enabled_for(tenant) and len(selection.candidates) > 1:
            choice = await adaptive.choose(classification, selection.candidates, tenant)
            explored = choice.explored
            rest = tuple(c for c in selection.candidates if c is not choice.candidate)
            selection = dataclasses.replace(selection, selected=choice.candidate, fallbacks=rest)
            notes.append(choice.note)
        if notes:
            selection = dataclasses.replace(selection, reason="; ".join([*notes, selection.reason]))
        return selection, explored


def _check_explicit(spec: ModelSpec, request: RoutingRequest, needed: int) -> None:
    """A model the caller named must still be able to serve the request: never send tools,
    images or a schema to a model without them, nor a prompt its window cannot hold."""
    lacking = request.needed_capabilities() - spec.capabilities
    if lacking:
        raise NoEligibleModel(
            "request.capabilities",
            f"model {spec.name} lacks {sorted(lacking)}, which the request needs",
            [(spec.name, f"lacks {sorted(lacking)}")],
        )
    if needed > spec.context_window_tokens:
        raise NoEligibleModel(
            "context_window",
            f"model {spec.name} holds {spec.context_window_tokens} tokens; the request needs "
            f"{needed} (estimated prompt + max output)",
            [(spec.name, f"holds {spec.context_window_tokens} tokens")],
        )


def _candidate(
    spec: ModelSpec, classification: Classification, input_tokens: int, output_tokens: int
) -> Candidate:
    return Candidate(
        model=spec,
        estimated_cost_usd=spec.cost_usd(input_tokens, output_tokens),
        estimated_latency_ms=spec.typical_latency_ms,
        quality=classification.predicted_quality.get(
            spec.name, spec.quality_for(classification.task_type)
        ),
    )


def session_key(request: RoutingRequest) -> str:
    """Where a session's model is kept: sessions are per tenant."""
    return f"{request.tenant}:{request.session_id}"
