"""The selection policy, called directly: each rule shown deciding."""

from __future__ import annotations

import pytest

from modelrouter import Classification, Complexity, Constraints, RoutingRequest, TaskType
from modelrouter.config import parse_config
from modelrouter.errors import NoEligibleModel
from modelrouter.selection import select
from modelrouter.testing import TEST_CONFIG

CONFIG = parse_config(TEST_CONFIG)


def classification(complexity=Complexity.SIMPLE, task=TaskType.QA, **kwargs) -> Classification:
    return Classification(complexity, task, 0.1, 0.9, "test", **kwargs)


def run(
    prompt="What is 2 + 2?",
    *,
    complexity=Complexity.SIMPLE,
    task=TaskType.QA,
    unavailable=lambda m: None,
    predicted=None,
    features=None,
    **constraints,
):
    request = RoutingRequest.from_prompt(prompt, constraints=Constraints(**constraints))
    return select(
        request,
        classification(
            complexity, task, predicted_quality=predicted or {}, features=features or {}
        ),
        CONFIG.models,
        CONFIG.routing,
        unavailable,
    )


def names(selection) -> list[str]:
    return [c.model.name for c in selection.candidates]


def test_cheapest_model_wins_and_the_rest_follow_by_cost():
    selection = run()
    assert names(selection) == ["tiny", "small-coder", "large"]
    assert "cheapest of 3" in selection.reason


def test_estimated_cost_uses_prompt_tokens_and_max_output_tokens():
    selection = run(max_output_tokens=1000)
    tiny = selection.selected
    expected = (selection.input_tokens * 0.1 + 1000 * 0.2) / 1_000_000
    assert tiny.estimated_cost_usd == pytest.approx(expected)


def test_complexity_sets_a_quality_floor():
    assert names(run(complexity=Complexity.MODERATE)) == ["small-coder", "large"]
    assert names(run(complexity=Complexity.EXPERT)) == ["large"]


def test_complexity_beyond_a_models_trust_excludes_it():
    # small-coder is trusted up to COMPLEX only; EXPERT would exclude it even at quality 1.
    selection = run(complexity=Complexity.EXPERT, predicted={"small-coder": 1.0})
    assert names(selection) == ["large"]


def test_task_type_requires_capabilities():
    assert names(run(task=TaskType.CODE)) == ["small-coder", "large"]


def test_caller_capabilities_filter():
    assert names(run(required_capabilities=("vision",))) == ["large"]


def test_min_quality_raises_the_floor():
    assert names(run(min_quality=0.6)) == ["small-coder", "large"]


def test_max_latency_filters_slow_models():
    assert names(run(max_latency_ms=500)) == ["tiny", "small-coder"]


def test_max_cost_filters_expensive_models():
    assert names(run(max_cost_usd=0.0002, max_output_tokens=100)) == ["tiny", "small-coder"]


def test_allowed_providers_and_excluded_models():
    assert names(run(allowed_providers=("premium",))) == ["large"]
    assert names(run(excluded_models=("tiny",))) == ["small-coder", "large"]


def test_context_window_must_fit_prompt_and_output():
    long_prompt = "lorem ipsum dolor sit amet " * 400  # ~2,000+ tokens
    selection = run(long_prompt)
    assert "tiny" not in names(selection)


def test_unavailable_models_are_skipped():
    selection = run(unavailable=lambda m: "no key" if m.provider == "budget" else None)
    assert names(selection) == ["large"]


def test_predicted_quality_replaces_catalog_quality():
    selection = run(complexity=Complexity.MODERATE, predicted={"tiny": 0.9})
    assert selection.selected.model.name == "tiny"
    assert selection.selected.quality == 0.9


def test_willingness_to_pay_trades_quality_for_cost():
    cheap = run(willingness_to_pay=100_000.0)  # quality points per USD
    assert cheap.selected.model.name == "tiny"
    rich = run(willingness_to_pay=0.0)
    assert rich.selected.model.name == "large"
    assert "quality minus" in rich.reason


def test_the_constraint_that_empties_the_list_is_named():
    with pytest.raises(NoEligibleModel) as caught:
        run(min_quality=0.99)
    assert caught.value.constraint == "constraints.min_quality"
    with pytest.raises(NoEligibleModel) as caught:
        run(unavailable=lambda m: "down")
    assert caught.value.constraint == "availability"


def test_ties_on_cost_are_broken_deterministically():
    # Same request twice gives the same order: no dict-order or hash dependence.
    assert names(run()) == names(run())


def test_a_calibrated_classifier_floors_and_quotes_p_adequate():
    predicted = {"tiny": 0.52, "small-coder": 0.81, "large": 0.97}
    selection = run(
        complexity=Complexity.MODERATE,
        predicted=predicted,
        features={"calibrated": 1.0},
        min_quality=0.8,
    )
    assert selection.selected.model.name == "small-coder"
    assert "P(adequate) >= 0.80" in selection.reason and "P(adequate) 0.81" in selection.reason
