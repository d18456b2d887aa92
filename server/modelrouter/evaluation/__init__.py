"""Offline evaluation of routers on routing datasets (RouterBench AIQ, RouteLLM APGR/CPT).

Nothing here is imported by the server; ``modelrouter eval`` uses it. Only numpy is needed
(matplotlib for :mod:`modelrouter.evaluation.plot`).
"""

from __future__ import annotations

from .dataset import RoutingDataset, load_dataset, split_dataset
from .metrics import aiq, apgr, cpt, quality_cost_hull

__all__ = [
    "RoutingDataset",
    "aiq",
    "apgr",
    "cpt",
    "load_dataset",
    "quality_cost_hull",
    "split_dataset",
]
