"""The ``[routers]`` table: versioned learned routers in the store, retraining and its gate.

Router versions live in the decision log's database (``storage.log``); every replica on
that database serves the version it points at, re-read every ``reload_interval_s``.
``modelrouter retrain`` reads the other keys (its flags override them).
"""

from __future__ import annotations

from pydantic import Field
from pydantic.dataclasses import dataclass

from .fields import TABLE, Fraction, Int, Number

__all__ = ["RoutersConfig"]


@dataclass(frozen=True, slots=True, config=TABLE)
class RoutersConfig:
    """The ``[routers]`` table: router versions in the store, `retrain` and its gate."""

    reload_interval_s: Number = Field(
        default=10.0,
        gt=0.0,
        description="Seconds between two reads of the serving router version and A/B split "
        "from the store: how long a promote, rollback or A/B change takes to reach a replica.",
    )
    retrain_schedule_s: Number = Field(
        default=0.0,
        ge=0.0,
        description="Seconds between two retrains the server runs itself, like `modelrouter "
        "retrain` (0: off). One replica at a time runs them: the holder of a lease in the "
        "store, renewed every period.",
    )
    holdout: Fraction = Field(
        default=0.3,
        gt=0.0,
        lt=1.0,
        description="Share of the logged labelled prompts `retrain` holds back to compare the "
        "candidate with the serving router (the rest trains the candidate).",
    )
    min_labelled: Int = Field(
        default=20,
        ge=4,
        description="Labelled prompts (with feedback or shadow scores) `retrain` needs in the "
        "decision log before it trains at all.",
    )
    resamples: Int = Field(
        default=200, ge=10, description="Paired bootstrap resamples of the gate's intervals."
    )
    confidence: Fraction = Field(
        default=0.95, gt=0.5, lt=1.0, description="Confidence level of the gate's intervals."
    )
    aiq_tolerance: Number = Field(
        default=0.0,
        ge=0.0,
        description="AIQ loss tolerated before the candidate is refused (the whole interval of "
        "the AIQ difference must be below minus this).",
    )
    calibration_tolerance: Number = Field(
        default=0.0,
        ge=0.0,
        description="ECE and Brier increase tolerated before the candidate is refused (the "
        "whole interval of the difference must be above this).",
    )
