"""Domain types shared by the router, its plugins and the gRPC edge.

These are plain dataclasses and enums; protobuf messages exist only at the gRPC edge
(``modelrouter.convert``). Plugin authors import them from ``modelrouter``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field


class Complexity(enum.IntEnum):
    """How demanding a request is. Values match ``modelrouter.v1.Complexity``."""

    SIMPLE = 1
    MODERATE = 2
    COMPLEX = 3
    EXPERT = 4


class TaskType(enum.IntEnum):
    """What kind of work a request asks for. Values match ``modelrouter.v1.TaskType``."""

    CHAT = 1
    QA = 2
    SUMMARIZATION = 3
    CODE = 4
    REASONING = 5
    CREATIVE = 6
    EXTRACTION = 7
    TRANSLATION = 8


class Role(enum.StrEnum):
    """Author of a conversation turn."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


@dataclass(frozen=True, slots=True)
class Message:
    """One turn of the conversation."""

    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class Constraints:
    """Caller limits on the choice of model. ``None`` or empty means "no limit"."""

    max_cost_usd: float | None = None
    max_latency_ms: float | None = None
    min_quality: float | None = None
    allowed_providers: tuple[str, ...] = ()
    excluded_models: tuple[str, ...] = ()
    required_capabilities: tuple[str, ...] = ()
    classifier: str | None = None
    #: Upper bound on generated tokens; also used for cost estimates and budget reservations.
    max_output_tokens: int | None = None
    #: Quality points (0..1 scale) the caller would give up one USD for. When set, selection
    #: maximises ``quality - willingness_to_pay * cost`` instead of taking the cheapest model
    #: that meets the quality floor.
    willingness_to_pay: float | None = None


@dataclass(frozen=True, slots=True)
class RoutingRequest:
    """What a classifier and the selection policy see of one request."""

    messages: tuple[Message, ...]
    constraints: Constraints = field(default_factory=Constraints)
    #: Tenant on whose behalf the request runs ("default" when auth is off).
    tenant: str = "default"
    #: Explicit model asked for by the caller (skips selection), or ``None``.
    model: str | None = None

    @property
    def prompt(self) -> str:
        """The last user turn: the text the caller wants answered."""
        for message in reversed(self.messages):
            if message.role is Role.USER:
                return message.content
        return ""

    @property
    def system_prompt(self) -> str:
        return "\n".join(m.content for m in self.messages if m.role is Role.SYSTEM)

    @property
    def prior_turns(self) -> int:
        """Number of non-system turns before the last user turn."""
        turns = [m for m in self.messages if m.role is not Role.SYSTEM]
        return max(len(turns) - 1, 0)

    @property
    def text(self) -> str:
        """All message contents joined; what token estimates are computed over."""
        return "\n".join(m.content for m in self.messages)

    @classmethod
    def from_prompt(cls, prompt: str, **kwargs: object) -> RoutingRequest:
        """Convenience for the common single-prompt case."""
        return cls(messages=(Message(Role.USER, prompt),), **kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Classification:
    """A classifier's verdict on one request."""

    complexity: Complexity
    task_type: TaskType
    #: Continuous difficulty in [0, 1], consistent with ``complexity``.
    score: float
    #: How sure the classifier is, in [0, 1].
    confidence: float
    #: Name of the classifier that decided.
    classifier: str
    features: Mapping[str, float] = field(default_factory=dict)
    #: Optional per-model quality predictions in [0, 1] (model name -> expected quality) from
    #: classifiers that learn which models answer which prompts. Selection uses them in place
    #: of the catalog's static quality for the models they name.
    predicted_quality: Mapping[str, float] = field(default_factory=dict)
