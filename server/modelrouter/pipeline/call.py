"""What the pipeline knows about the call it serves, passed to every stage explicitly."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.trace import INVALID_SPAN, Span


@dataclass(frozen=True, slots=True)
class Call:
    """One call being served: which method, for which tenant, under which span."""

    #: The RPC (``Route``, ``Execute``, ``ExecuteStream``, ...), as telemetry names it.
    method: str
    #: The authenticated tenant (``default`` with auth off).
    tenant: str = "default"
    #: The call's SERVER span; the pipeline's spans become its children.
    span: Span = INVALID_SPAN
    #: Seconds left of the caller's deadline (``None``: no deadline).
    timeout_s: float | None = None
