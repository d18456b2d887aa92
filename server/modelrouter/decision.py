"""The values one request produces on its way through the pipeline.

A :class:`Decision` (how the request was classified, which models may answer and why) is
made by the select stage; execution adds one :class:`AttemptRecord` per provider call and
ends with an :class:`ExecutionSummary`. The record stage writes all of it out once. These
are plain frozen dataclasses at the bottom of the package, so every layer can use them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .base import Usage
from .config import ModelSpec
from .types import Classification, ToolCall

OK = "ok"
ERROR = "error"
CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A model that may answer, with what this request would cost on it."""

    model: ModelSpec
    estimated_cost_usd: float
    estimated_latency_ms: float
    quality: float


@dataclass(frozen=True, slots=True)
class Selection:
    """The chosen model, its ordered fallbacks, and the rule that decided."""

    selected: Candidate
    fallbacks: tuple[Candidate, ...]
    reason: str
    input_tokens: int
    max_output_tokens: int
    #: The models the rules removed, each with the rule that removed it (model, rule).
    excluded: tuple[tuple[str, str], ...] = ()

    @property
    def candidates(self) -> tuple[Candidate, ...]:
        return (self.selected, *self.fallbacks)


@dataclass(frozen=True, slots=True)
class Decision:
    """A routing decision: how the request was classified and which models may answer."""

    decision_id: str
    classification: Classification
    selection: Selection
    #: The adaptive policy picked this model to explore rather than exploit.
    explored: bool = False


@dataclass(frozen=True, slots=True)
class StreamOpened:
    """A stream's first event: which model answers it (failover is over once it is out)."""

    decision: Decision
    model: str
    provider: str


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One call to one model. ``usage`` is what the provider reported (``None``: nothing)."""

    model: str
    provider: str
    outcome: str
    latency_ms: float
    error_type: str = ""
    error_message: str = ""
    usage: Usage | None = None
    cost_usd: float = 0.0
    #: Usage was estimated from the text because the provider failed before reporting it.
    usage_estimated: bool = False
    #: 0 for the first call to this model in this execution, 1 for its first retry, ...
    retry: int = 0
    #: Wall-clock start, in nanoseconds since the epoch (the attempt's span starts there).
    started_ns: int = 0
    #: This failure opened the model's circuit.
    opened_circuit: bool = False


@dataclass(frozen=True, slots=True)
class ExecutionSummary:
    """The outcome of Execute, successful or not.

    On success ``model``/``provider`` name the model that answered and ``usage`` is its
    call's usage; on failure they are empty and ``usage`` sums every attempt.
    ``cost_usd`` always sums every attempt that used tokens.
    """

    decision: Decision
    attempts: tuple[AttemptRecord, ...]
    usage: Usage
    cost_usd: float
    latency_ms: float
    text: str = ""
    model: str = ""
    provider: str = ""
    finish_reason: str = ""
    #: Tools the model called (``finish_reason`` is then ``tool_calls``).
    tool_calls: tuple[ToolCall, ...] = ()
    #: ExecuteStream only: deltas reached the caller before the failure.
    stream_started: bool = False
    usage_estimated: bool = False
    #: Models passed over without a call, with the reason (circuit open, window too small).
    skipped: tuple[tuple[str, str], ...] = field(default_factory=tuple)
