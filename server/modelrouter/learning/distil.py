"""Distil the static embedding table of :class:`~.embedders.StaticEmbedder` from MiniLM.

    python -m modelrouter.learning.distil [--out PATH] [--dim 256] [--batch 1024]

model2vec's recipe (Tulkens and van Dongen, 2024), on the bundled all-MiniLM-L6-v2:

1. every token of the vocabulary is embedded once through the model, as the sentence
   ``[CLS] token [SEP]`` mean-pooled the way sentence-transformers pools MiniLM;
2. the rows are centred and projected on their first ``dim`` principal components;
3. each row is multiplied by a smooth inverse frequency weight ``a / (a + p)``, where
   ``p`` is the token's Zipf probability by vocabulary rank (WordPiece vocabularies are
   roughly ordered by frequency) and ``a`` = 1e-4, so frequent tokens ("the", "of") weigh
   little in a prompt's mean;
4. special and never-produced tokens ([PAD], [unusedN], ...) get a zero row;
5. rows are stored as int8 with one float32 scale per row (np.savez_compressed).

One variant was also tried: the token's own output row and ``a`` = 1e-5, which kept more of
each prompt's 10 nearest MiniLM neighbours (0.30 vs 0.28 on 800 shared prompts) but routed
worse on gsm8k (learned AIQ 0.7570 vs 0.7614; mmlu_pro 0.6478 vs 0.6456), so the plain
recipe above is the shipped one (docs/performance.md).

Needs the ``learned`` extra (torch, transformers); runs offline. A few minutes on 2 cores.
The output records the tokenizer's SHA-256, which the embedder checks when it loads.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from .embedders import STATIC_MINILM_PATH, _bundled_minilm_path

__all__ = ["distil", "quantize", "sif_weights"]

SIF_A = 1e-4


def sif_weights(vocab_size: int, a: float = SIF_A) -> np.ndarray:
    """``a / (a + p(rank))`` for Zipf probabilities ``p`` over ranks 1..vocab_size."""
    inv_rank = 1.0 / np.arange(2, vocab_size + 2, dtype=np.float64)
    p = inv_rank / inv_rank.sum()
    return a / (a + p)


def quantize(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 rows and a float32 scale per row; ``rows * scales[:, None]`` restores ``table``
    to within half a step of 1/127 of each row's largest magnitude."""
    peak = np.abs(table).max(axis=1)
    scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    rows = np.clip(np.rint(table / scales[:, None]), -127, 127).astype(np.int8)
    return rows, scales


def _token_vectors(model_path: str, ids: np.ndarray, batch: int) -> np.ndarray:
    """Mean-pooled MiniLM output of ``[CLS] id [SEP]`` for every id (float32, 384-d)."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(model_path).eval()
    cls_id, sep_id = 101, 102  # bert-base-uncased's, which MiniLM uses
    out = np.zeros((len(ids), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for begin in range(0, len(ids), batch):
            part = torch.as_tensor(ids[begin : begin + batch], dtype=torch.long)[:, None]
            n = part.shape[0]
            input_ids = torch.cat(
                [torch.full((n, 1), cls_id), part, torch.full((n, 1), sep_id)], dim=1
            )
            hidden = model(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            out[begin : begin + n] = hidden.mean(dim=1).numpy()
    return out


def distil(out: Path, dim: int = 256, batch: int = 1024) -> dict[str, object]:
    """Write the table to ``out``; returns what was recorded in it."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    model_path = _bundled_minilm_path()
    raw = (Path(model_path) / "tokenizer.json").read_bytes()
    vocab: dict[str, int] = json.loads(raw)["model"]["vocab"]
    size = max(vocab.values()) + 1
    # Tokens the tokenizer never produces from text (add_special_tokens=False) stay zero.
    dead = {i for t, i in vocab.items() if t.startswith("[") and t.endswith("]") and t != "[UNK]"}
    live = np.array([i for i in range(size) if i not in dead], dtype=np.int64)
    started = time.perf_counter()
    vectors = _token_vectors(model_path, live, batch)
    embed_s = time.perf_counter() - started
    centred = vectors - vectors.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    projected = centred @ components[:dim].T
    table = np.zeros((size, dim), dtype=np.float32)
    table[live] = projected * sif_weights(size)[live, None]
    rows, scales = quantize(table)
    name = f"static:minilm-{dim}"
    np.savez_compressed(
        out,
        name=np.array(name),
        dim=np.array(dim),
        rows=rows,
        scales=scales,
        tokenizer_sha256=np.array(hashlib.sha256(raw).hexdigest()),
        recipe=np.array(
            f"all-MiniLM-L6-v2 token outputs ([CLS] t [SEP], mean-pooled), PCA {dim}, "
            f"SIF a={SIF_A} over Zipf ranks, int8 per-row scale"
        ),
    )
    return {"name": name, "tokens": len(live), "dim": dim, "embed_s": round(embed_s, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=STATIC_MINILM_PATH)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1024)
    args = parser.parse_args()
    info = distil(args.out, args.dim, args.batch)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB): {info}")


if __name__ == "__main__":
    main()
