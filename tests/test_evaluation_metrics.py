"""AIQ, APGR and CPT against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from modelrouter.evaluation.metrics import aiq, apgr, cpt, quality_cost_hull
from modelrouter.evaluation.sweep import choose_min_quality, choose_wtp, sweep


def test_hull_drops_dominated_points_and_points_under_a_chord() -> None:
    # (3, 0.8) is dominated by (2, 0.9); (1.5, 0.6) lies under the chord (1, .5)-(2, .9).
    costs, quals = quality_cost_hull([1, 2, 3, 1.5, 4], [0.5, 0.9, 0.8, 0.6, 0.95])
    assert costs.tolist() == [1, 2, 4]
    assert quals.tolist() == [0.5, 0.9, 0.95]


def test_hull_is_non_decreasing_even_when_the_cheapest_point_is_best() -> None:
    costs, quals = quality_cost_hull([1, 2, 3], [0.9, 0.5, 0.7])
    assert costs.tolist() == [1] and quals.tolist() == [0.9]


def test_aiq_is_area_under_hull_extended_flat_divided_by_max_cost() -> None:
    # Hull (1, .5)-(2, .9); trapezoid 0.7, then flat 0.9 from 2 to 4 adds 1.8: 2.5 / 4.
    assert aiq([1, 2, 3], [0.5, 0.9, 0.8], max_cost=4) == pytest.approx(0.625)


def test_aiq_of_one_model_counts_nothing_below_its_cost() -> None:
    assert aiq([1], [0.8], max_cost=4) == pytest.approx(0.8 * 3 / 4)
    assert aiq([4], [0.8], max_cost=4) == 0.0


def test_aiq_cuts_a_hull_that_reaches_past_max_cost() -> None:
    # Hull (0, 0)-(2, 1) cut at 1: triangle of area 0.25 under q = c / 2.
    assert aiq([0, 2], [0, 1], max_cost=1) == pytest.approx(0.25)


def test_aiq_defaults_max_cost_to_largest_point_cost() -> None:
    assert aiq([1, 2], [0.5, 0.9]) == pytest.approx(0.7 / 2)


def test_apgr_integrates_pgr_over_strong_call_share() -> None:
    # Weak 0.5, strong 0.9; at 50% strong calls quality 0.82 -> PGR 0.8.
    # Curve (0,0)-(0.5,0.8)-(1,1): 0.5*0.4 + 0.5*0.9 = 0.65.
    assert apgr([0.5], [0.82], q_weak=0.5, q_strong=0.9) == pytest.approx(0.65)


def test_apgr_of_random_routing_is_one_half() -> None:
    shares = np.linspace(0, 1, 11)
    assert apgr(shares, 0.5 + 0.4 * shares, 0.5, 0.9) == pytest.approx(0.5)


def test_cpt_interpolates_between_operating_points() -> None:
    assert cpt([0.5], [0.82], 0.5, 0.9, 0.5) == pytest.approx(0.3125)
    assert cpt([0.5], [0.82], 0.5, 0.9, 0.9) == pytest.approx(0.75)
    assert cpt([0.5], [0.82], 0.5, 0.9, 0.8) == pytest.approx(0.5)


def test_pgr_rejects_models_of_equal_quality() -> None:
    with pytest.raises(ValueError):
        apgr([0.5], [0.7], 0.7, 0.7)


def test_wtp_choice_trades_quality_for_cost() -> None:
    q = np.array([[0.5, 0.9]])
    c = np.array([[1.0, 3.0]])
    assert choose_wtp(q, c, 0.0).tolist() == [1]
    assert choose_wtp(q, c, 1.0).tolist() == [0]  # 0.4 more quality is not worth 2 USD


def test_min_quality_choice_takes_cheapest_eligible_else_best() -> None:
    q = np.array([[0.5, 0.7, 0.9]])
    c = np.array([[1.0, 2.0, 3.0]])
    assert choose_min_quality(q, c, 0.6).tolist() == [1]
    assert choose_min_quality(q, c, 0.95).tolist() == [2]


def test_sweep_of_true_values_reaches_oracle_quality_and_cheapest_model() -> None:
    quality = np.array([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]])
    cost = np.array([[1.0, 10.0], [1.0, 10.0], [1.0, 10.0]])
    result = sweep(quality, cost, quality, cost, "wtp")
    best = int(np.argmax(result.qualities))
    assert result.qualities[best] == pytest.approx(2 / 3)
    assert result.costs[best] == pytest.approx((1 + 10 + 1) / 3)  # ties go to the cheaper
    assert math.isclose(result.costs.min(), 1.0)
