"""The event loop the server runs on: uvloop when it is installed, else asyncio's own.

uvloop (a default dependency wherever it builds: every platform but Windows) makes every
loop iteration, socket read and task switch cheaper: the gRPC handoffs and the provider
SDKs' HTTP calls spend a good part of their time there. Without it nothing changes but
speed.
``MODELROUTER_EVENT_LOOP=asyncio`` keeps asyncio's loop even when uvloop is installed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

from .config.environment import Environment

__all__ = ["loop_factory", "run"]

T = TypeVar("T")


def loop_factory(
    environ: Mapping[str, str] | None = None,
) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop constructor when installed and not turned off; ``None``: asyncio's."""
    choice = Environment(environ).get("MODELROUTER_EVENT_LOOP") or ""
    if choice.strip().lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop  # type: ignore[no-any-return]


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the loop :func:`loop_factory` picks."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
