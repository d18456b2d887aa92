"""The selection policy: which models may answer a request, and in which order.

Filters run in a fixed order; each removes the models that fail one rule. When a filter
removes the last candidates, selection fails naming that rule, so a caller learns which
constraint to relax. The survivors are ordered by estimated cost of this request
(cheapest first), or, when the caller gives a willingness to pay, by
``quality - willingness_to_pay * cost``; the first is selected and the rest are fallbacks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple, NoReturn

from .config import ModelSpec, RoutingConfig
from .decision import Candidate, Selection
from .errors import NoEligibleModel
from .tokens import estimate_request_tokens
from .types import Classification, RoutingRequest


# A tuple, not a frozen dataclass: a dozen are built per request, and a frozen
# dataclass's __init__ (object.__setattr__ per field) costs several times more.
class _Rule(NamedTuple):
    #: Name reported when this rule empties the candidate list.
    constraint: str
    keep: Callable[[Candidate], bool]
    #: What the rule demanded, for the error message; formatted only when it is needed.
    demand: Callable[[], str]
    #: A preference of the router's own (tier floors, task capabilities): with
    #: ``[routing] floor = "soft"`` it gives way when it alone would leave no model.
    soft: bool = False
    #: Why one model fails the rule, listed per model when the rule leaves none.
    why: Callable[[Candidate], str] | None = None


def select(
    request: RoutingRequest,
    classification: Classification,
    models: Sequence[ModelSpec],
    routing: RoutingConfig,
    unavailable_reason: Callable[[ModelSpec], str | None],
    cooling_reason: Callable[[ModelSpec], str | None] = lambda model: None,
    input_tokens: int | None = None,
) -> Selection:
    """Order the models that may answer ``request``; the reason names the rule that decided.

    ``unavailable_reason`` says why a model cannot serve now (Route passes one that
    forgives a missing API key, Execute one that does not). ``cooling_reason`` says which
    unavailable models are out only for now (an open circuit); the reason lists them so
    that a caller sees why a usual choice was skipped.
    """
    constraints = request.constraints
    if input_tokens is None:  # callers that select more than once estimate once
        input_tokens = estimate_request_tokens(request)
    output_tokens = constraints.max_output_tokens or routing.default_max_output_tokens
    candidates = [
        Candidate(
            model=m,
            estimated_cost_usd=m.cost_usd(input_tokens, output_tokens),
            estimated_latency_ms=m.typical_latency_ms,
            quality=classification.predicted_quality.get(
                m.name, m.quality_for(classification.task_type)
            ),
        )
        for m in models
    ]
    complexity = classification.complexity
    complexity_floor = routing.min_quality.get(complexity, 0.0)
    task_capabilities = routing.task_capabilities.get(classification.task_type, frozenset())
    caller_capabilities = frozenset(constraints.required_capabilities)
    # What the request itself needs (tools, images, a response format) is never given up:
    # dropping a tool or an image to fit a cheaper model would change the answer.
    needed_capabilities = request.needed_capabilities()
    soft = routing.floor == "soft"
    # A rule that keeps every model (an empty caller list, a task type that needs no
    # capability) can neither empty the list nor change the count left before a later rule,
    # so it is left out: the rules run once per model and request.
    rules: list[_Rule] = []
    if constraints.excluded_models:
        rules.append(
            _Rule(
                "constraints.excluded_models",
                lambda c: c.model.name not in constraints.excluded_models,
                lambda: f"models other than {sorted(constraints.excluded_models)}",
            )
        )
    if constraints.allowed_providers:
        rules.append(
            _Rule(
                "constraints.allowed_providers",
                lambda c: c.model.provider in constraints.allowed_providers,
                lambda: f"providers in {sorted(constraints.allowed_providers)}",
            )
        )
    rules.append(
        _Rule(
            "availability",
            lambda c: unavailable_reason(c.model) is None,
            lambda: "a model that is available now (see ListModels for why others are not)",
            why=lambda c: unavailable_reason(c.model) or "",
        )
    )
    if needed_capabilities:
        rules.append(
            _Rule(
                "request.capabilities",
                lambda c: needed_capabilities <= c.model.capabilities,
                lambda: f"the capabilities the request needs {sorted(needed_capabilities)}",
                why=lambda c: f"lacks {sorted(needed_capabilities - c.model.capabilities)}",
            )
        )
    if caller_capabilities:
        rules.append(
            _Rule(
                "constraints.required_capabilities",
                lambda c: caller_capabilities <= c.model.capabilities,
                lambda: f"capabilities {sorted(caller_capabilities)}",
                why=lambda c: f"lacks {sorted(caller_capabilities - c.model.capabilities)}",
            )
        )
    rules.append(
        _Rule(
            "context_window",
            lambda c: input_tokens + output_tokens <= c.model.context_window_tokens,
            lambda: (
                f"a context window of at least {input_tokens + output_tokens} tokens "
                f"({input_tokens} estimated prompt + {output_tokens} output)"
            ),
            why=lambda c: f"holds {c.model.context_window_tokens} tokens",
        )
    )
    if constraints.min_quality is not None:
        rules.append(
            _Rule(
                "constraints.min_quality",
                lambda c: c.quality >= constraints.min_quality,  # type: ignore[operator]
                lambda: f"quality >= {constraints.min_quality:.2f}",
            )
        )
    if constraints.max_latency_ms is not None:
        rules.append(
            _Rule(
                "constraints.max_latency_ms",
                lambda c: c.estimated_latency_ms <= constraints.max_latency_ms,  # type: ignore[operator]
                lambda: f"typical latency <= {constraints.max_latency_ms:g} ms",
            )
        )
    if constraints.max_cost_usd is not None:
        rules.append(
            _Rule(
                "constraints.max_cost_usd",
                lambda c: c.estimated_cost_usd <= constraints.max_cost_usd,  # type: ignore[operator]
                lambda: f"estimated cost <= ${constraints.max_cost_usd:g}",
            )
        )
    # The router's own preferences for the tier come last: with a soft floor they give
    # way only once every hard rule (the caller's, the request's) has had its say.
    rules.append(
        _Rule(
            "complexity",
            lambda c: c.model.max_complexity >= complexity,
            lambda: f"a model trusted with {complexity.name} requests",
            soft=soft,
        )
    )
    if task_capabilities:
        rules.append(
            _Rule(
                "task_type",
                lambda c: task_capabilities <= c.model.capabilities,
                lambda: (
                    f"capabilities {sorted(task_capabilities)} "
                    f"for {classification.task_type.name} tasks"
                ),
                soft=soft,
            )
        )
    rules.append(
        _Rule(
            "complexity",
            lambda c: c.quality >= complexity_floor,
            lambda: f"quality >= {complexity_floor:.2f} for {complexity.name} requests",
            soft=soft,
        )
    )
    cooling = [
        f"{c.model.name} ({reason})" for c in candidates if (reason := cooling_reason(c.model))
    ]
    excluded: list[tuple[str, str]] = []
    survivors, emptied_by = _filter(candidates, rules, excluded)
    below_floor = None
    if not survivors and rules[emptied_by].soft:
        # No model meets the router's own floor for this tier: the best model that meets
        # every hard rule answers, and the reason says so.
        below_floor = rules[emptied_by]
        excluded.clear()
        survivors, emptied_by = _filter(candidates, [r for r in rules if not r.soft], excluded)
        rules = [r for r in rules if not r.soft]
    if not survivors:
        _no_eligible_model(candidates, rules, emptied_by)

    floor = max(complexity_floor, constraints.min_quality or 0.0)
    wtp = constraints.willingness_to_pay
    if below_floor is not None:
        survivors.sort(key=lambda c: (-c.quality, c.estimated_cost_usd, c.model.name))
        best = survivors[0]
        reason = (
            f"best available of {len(survivors)} models meeting the request's own constraints, "
            f"below the tier's floor: no model has {below_floor.demand()} "
            f"({classification.complexity.name} {classification.task_type.name} "
            f"by {classification.classifier}); quality {best.quality:.2f}, "
            f"estimated ${best.estimated_cost_usd:.6f}"
        )
    elif wtp is not None:
        survivors.sort(
            key=lambda c: (
                -(c.quality - wtp * c.estimated_cost_usd),
                c.estimated_cost_usd,
                c.model.name,
            )
        )
        best = survivors[0]
        reason = (
            f"best quality minus {wtp:g} x cost among {len(survivors)} eligible models "
            f"(quality {best.quality:.2f}, estimated ${best.estimated_cost_usd:.6f})"
        )
    else:
        # Ties on cost go to the better model, then to the name, so the order is stable.
        survivors.sort(key=lambda c: (c.estimated_cost_usd, -c.quality, c.model.name))
        best = survivors[0]
        # A calibrated learned classifier predicts the probability that each model's
        # answer is adequate; the floor is then a floor on that probability.
        measure = "P(adequate)" if classification.features.get("calibrated") else "quality"
        reason = (
            f"cheapest of {len(survivors)} eligible models with {measure} >= {floor:.2f} "
            f"({classification.complexity.name} {classification.task_type.name} "
            f"by {classification.classifier}); {measure} {best.quality:.2f}, "
            f"estimated ${best.estimated_cost_usd:.6f}"
        )
    if cooling:
        reason += f"; skipped while cooling down: {', '.join(cooling)}"
    return Selection(
        selected=survivors[0],
        fallbacks=tuple(survivors[1:]),
        reason=reason,
        input_tokens=input_tokens,
        max_output_tokens=output_tokens,
        excluded=tuple(excluded),
    )


def _filter(
    candidates: Sequence[Candidate], rules: Sequence[_Rule], excluded: list[tuple[str, str]]
) -> tuple[list[Candidate], int]:
    """The candidates passing every rule, and the index of the rule that emptied the list
    when none does: the latest first failure among them (earlier rules left someone).
    ``excluded`` receives (model, rule) for every candidate removed."""
    survivors: list[Candidate] = []
    latest_failure = -1
    for candidate in candidates:
        for failed_at, rule in enumerate(rules):
            if not rule.keep(candidate):
                latest_failure = max(latest_failure, failed_at)
                reason = (
                    rule.constraint
                    if rule.why is None
                    else f"{rule.constraint}: {rule.why(candidate)}"
                )
                excluded.append((candidate.model.name, reason))
                break
        else:
            survivors.append(candidate)
    return survivors, latest_failure


def _no_eligible_model(
    candidates: Sequence[Candidate], rules: Sequence[_Rule], emptied_by: int
) -> NoReturn:
    rule = rules[emptied_by]
    left = [c for c in candidates if all(earlier.keep(c) for earlier in rules[:emptied_by])]
    why = rule.why
    raise NoEligibleModel(
        rule.constraint,
        f"{len(left)} candidate(s) left before it, none with {rule.demand()}",
        [(c.model.name, why(c)) for c in left] if why is not None else (),
    )
