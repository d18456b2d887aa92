"""Routing datasets: one prompt a line with every model's quality and cost on it.

The format (JSONL, optionally gzipped) is::

    {"id": "...", "prompt": "...", "category": "...",
     "scores": {"<model>": <quality 0..1>, ...},
     "costs":  {"<model>": <USD>, ...}}

Every line must name the same models.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["DatasetError", "RoutingDataset", "load_dataset", "split_dataset"]


class DatasetError(ValueError):
    """A routing dataset file is malformed; the message names the file and line."""


@dataclass(frozen=True)
class RoutingDataset:
    """Prompts with per-model quality and cost, as aligned arrays.

    ``quality[i, j]`` and ``cost[i, j]`` are model ``models[j]``'s quality (0..1) and cost (USD)
    on prompt ``prompts[i]``.
    """

    ids: tuple[str, ...]
    prompts: tuple[str, ...]
    categories: tuple[str, ...]
    models: tuple[str, ...]
    quality: np.ndarray
    cost: np.ndarray

    def __len__(self) -> int:
        return len(self.prompts)

    def subset(self, indices: Sequence[int] | np.ndarray) -> RoutingDataset:
        """The rows at ``indices``, in that order."""
        idx = np.asarray(indices, dtype=np.int64)
        return RoutingDataset(
            ids=tuple(self.ids[i] for i in idx),
            prompts=tuple(self.prompts[i] for i in idx),
            categories=tuple(self.categories[i] for i in idx),
            models=self.models,
            quality=self.quality[idx],
            cost=self.cost[idx],
        )


def _open(path: Path):  # type: ignore[no-untyped-def]
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def load_dataset(path: str | Path, limit: int | None = None) -> RoutingDataset:
    """Read a routing dataset; ``limit`` keeps only the first ``limit`` prompts.

    Raises :class:`DatasetError` naming the file and line for bad JSON, missing keys or a
    model set that differs from the first line's.
    """
    path = Path(path)
    ids: list[str] = []
    prompts: list[str] = []
    categories: list[str] = []
    quality: list[list[float]] = []
    cost: list[list[float]] = []
    models: tuple[str, ...] | None = None
    with _open(path) as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            if limit is not None and len(prompts) >= limit:
                break
            try:
                row = json.loads(line)
                scores, costs = row["scores"], row["costs"]
                prompt = row["prompt"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DatasetError(
                    f"{path}:{lineno}: expected a JSON object with prompt, scores and costs ({exc})"
                ) from exc
            if models is None:
                models = tuple(scores)
            if set(scores) != set(models) or set(costs) != set(models):
                raise DatasetError(
                    f"{path}:{lineno}: models differ from the first line's {sorted(models)}"
                )
            ids.append(str(row.get("id", lineno)))
            prompts.append(str(prompt))
            categories.append(str(row.get("category", "")))
            quality.append([float(scores[m]) for m in models])
            cost.append([float(costs[m]) for m in models])
    if models is None:
        raise DatasetError(f"{path}: no prompts")
    return RoutingDataset(
        ids=tuple(ids),
        prompts=tuple(prompts),
        categories=tuple(categories),
        models=models,
        quality=np.asarray(quality, dtype=np.float64),
        cost=np.asarray(cost, dtype=np.float64),
    )


def split_dataset(
    data: RoutingDataset, train_fraction: float = 0.7, seed: int = 0
) -> tuple[RoutingDataset, RoutingDataset]:
    """Shuffle with ``numpy.random.default_rng(seed)`` and cut into (train, test).

    The same data, fraction and seed always give the same split.
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    order = np.random.default_rng(seed).permutation(len(data))
    cut = round(train_fraction * len(data))
    return data.subset(order[:cut]), data.subset(order[cut:])
