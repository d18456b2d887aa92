"""Learned routing: prompt embedders, per-model quality models and offline routers.

Importing this package is light (numpy only). torch and sentence-transformers are imported
when a :class:`~modelrouter.learning.embedders.MiniLMEmbedder` first embeds (a
:class:`~modelrouter.learning.embedders.StaticEmbedder` needs only ``tokenizers``),
scikit-learn when a quality model is trained. Without them a :class:`MissingExtraError` names the
``learned`` extra.
"""

from __future__ import annotations

from .embedders import (
    CachingEmbedder,
    Embedder,
    HashingEmbedder,
    MiniLMEmbedder,
    MissingExtraError,
    StaticEmbedder,
    embedder_from_name,
)
from .quality_model import QualityModel, train_quality_model

__all__ = [
    "CachingEmbedder",
    "Embedder",
    "HashingEmbedder",
    "MiniLMEmbedder",
    "MissingExtraError",
    "QualityModel",
    "StaticEmbedder",
    "embedder_from_name",
    "train_quality_model",
]
