"""P(adequate): ECE, Brier, calibrators, calibrated versioned artefacts, the retraining gate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelrouter.evaluation.calibration import (
    brier,
    ece,
    fit_calibrator,
    fit_isotonic,
    fit_platt,
    reliability_curve,
)
from modelrouter.evaluation.compare import compare_predictions, compare_routers
from modelrouter.evaluation.dataset import RoutingDataset, split_dataset
from modelrouter.learning.routers import Predictions


def _overconfident(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """True probabilities t; a predictor that pushes them towards 0 and 1 (t**3-style)."""
    rng = np.random.default_rng(seed)
    true = rng.uniform(0.05, 0.95, n)
    outcome = (rng.random(n) < true).astype(float)
    z = np.log(true / (1 - true)) * 3.0
    return 1 / (1 + np.exp(-z)), outcome


def test_ece_and_brier_match_hand_computed_values() -> None:
    # Bin [0.2, 0.3): predictions 0.2, 0.2, observed 1 of 2 -> gap 0.3; bin [0.9, 1]: 0.9 vs 1.
    prob = [0.2, 0.2, 0.9]
    outcome = [1, 0, 1]
    assert ece(prob, outcome) == pytest.approx((2 * 0.3 + 1 * 0.1) / 3)
    assert brier(prob, outcome) == pytest.approx((0.64 + 0.04 + 0.01) / 3)
    curve = reliability_curve(prob, outcome)
    assert curve.counts.tolist() == [2, 1]
    assert curve.observed.tolist() == [0.5, 1.0]


def test_perfectly_calibrated_predictions_have_small_ece_and_overconfident_large() -> None:
    rng = np.random.default_rng(1)
    true = rng.uniform(0, 1, 20000)
    outcome = (rng.random(true.size) < true).astype(float)
    assert ece(true, outcome) < 0.02
    over, y = _overconfident()
    assert ece(over, y) > 0.08


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibrators_fitted_on_one_half_cut_ece_on_the_other(method: str) -> None:
    prob, outcome = _overconfident(8000)
    cal = fit_calibrator(prob[:4000], outcome[:4000], method)
    before = ece(prob[4000:], outcome[4000:])
    after = ece(cal(prob[4000:]), outcome[4000:])
    assert after < before / 2
    assert brier(cal(prob[4000:]), outcome[4000:]) < brier(prob[4000:], outcome[4000:])


def test_isotonic_map_is_monotone_and_keeps_distinct_predictions_apart() -> None:
    prob, outcome = _overconfident(3000)
    cal = fit_isotonic(prob, outcome)
    grid = np.linspace(0, 1, 501)
    mapped = cal(grid)
    assert np.all(np.diff(mapped) >= -1e-12)
    assert mapped.min() >= 0.0 and mapped.max() <= 1.0
    # Linear between block centres: far more distinct outputs than a step function's blocks.
    assert len(np.unique(np.round(cal(prob), 9))) > len(cal.knots_x)


def test_platt_recovers_a_known_temperature() -> None:
    prob, outcome = _overconfident(20000, seed=3)
    cal = fit_platt(prob, outcome)
    # The predictor's logits are 3x the truth's, so the slope on them should be about 1/3.
    assert cal.params[0] == pytest.approx(1 / 3, rel=0.15)


# --- the retraining gate -----------------------------------------------------------------


def _pair_data(n: int = 600, seed: int = 0) -> RoutingDataset:
    """Weak model fails on a random 40 % of prompts; strong always succeeds at 20x the cost."""
    rng = np.random.default_rng(seed)
    hard = rng.random(n) < 0.4
    quality = np.stack([np.where(hard, 0.0, 1.0), np.ones(n)], axis=1)
    return RoutingDataset(
        ids=tuple(map(str, range(n))),
        prompts=tuple(f"p{i}" for i in range(n)),
        categories=("x",) * n,
        models=("weak", "strong"),
        quality=quality,
        cost=np.tile([1e-5, 2e-4], (n, 1)),
    )


class _Fixed:
    """A 'router' whose predictions are given: P(weak adequate) is ``signal`` blended with noise."""

    def __init__(self, data: RoutingDataset, signal: float, seed: int) -> None:
        rng = np.random.default_rng(seed)
        weak = signal * data.quality[:, 0] + (1 - signal) * rng.random(len(data))
        self.pred = Predictions(
            np.stack([weak, np.full(len(data), 0.99)], axis=1), data.cost.copy()
        )

    def predict(self, data: RoutingDataset) -> Predictions:
        return self.pred


def test_gate_promotes_a_clearly_better_candidate_and_refuses_a_clearly_worse_one() -> None:
    data = _pair_data()
    good, bad = _Fixed(data, 0.9, 1), _Fixed(data, 0.1, 2)
    better = compare_routers(bad, good, data, resamples=40)
    assert better.promote and better.aiq_delta.low > 0
    assert better.candidate_aiq.low <= better.candidate_aiq.estimate <= better.candidate_aiq.high
    worse = compare_routers(good, bad, data, resamples=40)
    assert not worse.promote
    assert worse.aiq_delta.high < 0
    assert any("AIQ worse" in r for r in worse.reasons)


def test_gate_promotes_an_equivalent_candidate_within_noise() -> None:
    data = _pair_data()
    a, b = _Fixed(data, 0.5, 1), _Fixed(data, 0.5, 2)
    verdict = compare_routers(a, b, data, resamples=40)
    assert verdict.aiq_delta.low < 0 < verdict.aiq_delta.high
    assert verdict.promote


def test_gate_refuses_a_candidate_whose_probabilities_are_badly_calibrated() -> None:
    data = _pair_data()
    serving = _Fixed(data, 0.9, 1)
    # Same ranking (so the same AIQ), but P(adequate) squashed towards 0.5: miscalibrated.
    squashed = Predictions(0.5 + (serving.pred.quality - 0.5) * 0.2, serving.pred.cost)
    verdict = compare_predictions(
        (serving.pred.quality, serving.pred.cost),
        (squashed.quality, squashed.cost),
        data.quality,
        data.cost,
        resamples=40,
    )
    assert verdict.aiq_delta.estimate == pytest.approx(0.0, abs=1e-9)
    assert not verdict.promote and any("ECE worse" in r for r in verdict.reasons)


# --- calibrated, versioned artefacts ----------------------------------------------------


def _words_data(n: int = 600, seed: int = 1) -> RoutingDataset:
    rng = np.random.default_rng(seed)
    hard = rng.random(n) < 0.4
    # The cheap model is right on 'integral' prompts only 20 % of the time, else 90 %.
    cheap_ok = rng.random(n) < np.where(hard, 0.2, 0.9)
    topics = np.where(hard, "integral", "sunshine")
    return RoutingDataset(
        ids=tuple(map(str, range(n))),
        prompts=tuple(f"question {i} about the {t}" for i, t in enumerate(topics)),
        categories=("x",) * n,
        models=("cheap", "strong"),
        quality=np.stack([cheap_ok.astype(float), np.ones(n)], axis=1),
        cost=np.tile([1e-5, 1e-3], (n, 1)),
    )


def test_trained_artefact_carries_calibration_and_a_content_version(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    from modelrouter.learning import HashingEmbedder, QualityModel, train_quality_model

    train, test = split_dataset(_words_data(3000), 0.7, seed=0)
    emb = HashingEmbedder(64)
    model = train_quality_model(
        train.prompts,
        emb.embed(train.prompts),
        train.quality,
        train.cost,
        train.models,
        emb.name,
        c=1.0,
    )
    assert model.calibrated and model.meta["calibration_prompts"] == len(train) // 5
    path = tmp_path / "router.npz"
    model.save(path)
    loaded = QualityModel.load(path)
    assert loaded.calibrated and loaded.version == model.version
    assert loaded.meta["version"] == model.version
    vectors = emb.embed(test.prompts)
    prob = loaded.predict_quality(vectors, test.prompts)
    np.testing.assert_allclose(prob, model.predict_quality(vectors, test.prompts), atol=1e-6)
    # Calibrated on held-back prompts: P(cheap adequate) on 'integral' prompts near 0.2.
    hard = np.array(["integral" in p for p in test.prompts])
    assert prob[hard, 0].mean() == pytest.approx(0.2, abs=0.1)
    assert prob[~hard, 0].mean() == pytest.approx(0.9, abs=0.1)
    # Another training (other C) is another version.
    other = train_quality_model(
        train.prompts,
        emb.embed(train.prompts),
        train.quality,
        train.cost,
        train.models,
        emb.name,
        c=0.1,
    )
    assert other.version != model.version


def test_artefact_whose_content_does_not_match_its_version_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    from modelrouter.learning import HashingEmbedder, QualityModel, train_quality_model

    data = _words_data(300)
    emb = HashingEmbedder(32)
    model = train_quality_model(
        data.prompts,
        emb.embed(data.prompts),
        data.quality,
        data.cost,
        data.models,
        emb.name,
        c=1.0,
    )
    path = tmp_path / "router.npz"
    model.save(path)
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["bias"] = arrays["bias"] + 1.0
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="damaged or edited"):
        QualityModel.load(path)
