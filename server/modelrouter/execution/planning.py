"""Which models Execute tries, in which order: the routing decision, or an explicit model.

``ExecuteRequest.model`` puts that model first; its fallbacks still follow the policy.
Asking for a model whose provider cannot work (no API key, plugin missing) is
``ModelUnavailable`` naming the reason, never a silent substitution.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from ..config import ModelSpec
from ..errors import NoEligibleModel
from ..router import Decision, Router
from ..selection import Candidate, Selection
from ..tokens import estimate_prompt_tokens
from ..types import Classification, RoutingRequest


async def decide(router: Router, request: RoutingRequest) -> Decision:
    """The routing decision for ``request``, with ``request.model`` (if any) tried first."""
    if request.model is None:
        return await router.route(request)
    router.check_request(request)
    spec = router.catalog.get(request.model)
    router.catalog.provider_for(spec)  # raises ModelUnavailable naming the missing variable
    try:
        decision = await router.route(request)
    except NoEligibleModel as exc:
        # The caller named a model, so the policy leaving no fallbacks is not an error.
        classification = await router.classify(request)
        input_tokens = estimate_prompt_tokens(request.messages)
        output_tokens = (
            request.constraints.max_output_tokens or router.config.routing.default_max_output_tokens
        )
        selection = Selection(
            selected=_candidate(spec, classification, input_tokens, output_tokens),
            fallbacks=(),
            reason=f"model {spec.name} requested explicitly; no fallbacks ({exc})",
            input_tokens=input_tokens,
            max_output_tokens=output_tokens,
        )
        return Decision(str(uuid.uuid4()), classification, selection)
    selection = decision.selection
    chosen = next((c for c in selection.candidates if c.model.name == spec.name), None)
    if chosen is None:
        chosen = _candidate(
            spec, decision.classification, selection.input_tokens, selection.max_output_tokens
        )
    fallbacks = tuple(c for c in selection.candidates if c.model.name != spec.name)
    names = ", ".join(c.model.name for c in fallbacks) or "none"
    reason = f"model {spec.name} requested explicitly; fallbacks by policy: {names}"
    return replace(
        decision, selection=replace(selection, selected=chosen, fallbacks=fallbacks, reason=reason)
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
