"""Test helpers for modelrouter and its plugin authors (loaded as a pytest plugin).

``FakeProvider`` is a real provider plugin with a queue of canned answers and a history of
calls; ``fake_provider_plugin`` registers it. The fixtures start a real in-process server
on a free port:

    async def test_my_classifier(modelrouter_server_factory):
        server = await modelrouter_server_factory(plugins=[my_plugin])
        ...
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from types import SimpleNamespace
from typing import Any, ClassVar

import grpc
import pytest

from . import hookimpl
from .base import Completion, CompletionChunk, Provider, ProviderCall, Usage
from .config import Config, parse_config
from .errors import ProviderError

#: A small catalog over fake providers: one model per price/quality tier.
TEST_CONFIG = """
[routing]
default_classifier = "rules"
default_max_output_tokens = 100

[routing.task_capabilities]
code = ["code"]

[providers.budget]
type = "fake"

[providers.premium]
type = "fake"

[[models]]
name = "tiny"
provider = "budget"
input_price_usd_per_mtok = 0.1
output_price_usd_per_mtok = 0.2
context_window_tokens = 2000
typical_latency_ms = 200
quality = 0.4
max_complexity = "moderate"
capabilities = ["chat"]

[[models]]
name = "small-coder"
provider = "budget"
input_price_usd_per_mtok = 0.5
output_price_usd_per_mtok = 1.0
context_window_tokens = 16000
typical_latency_ms = 400
quality = 0.65
max_complexity = "complex"
capabilities = ["chat", "code"]

[[models]]
name = "large"
provider = "premium"
input_price_usd_per_mtok = 3.0
output_price_usd_per_mtok = 15.0
context_window_tokens = 200000
typical_latency_ms = 1500
quality = 0.9
max_complexity = "expert"
capabilities = ["chat", "code", "vision", "long_context"]
"""

Answer = str | Exception | Callable[[ProviderCall], Awaitable[str] | str]


class FakeProvider(Provider):
    """Answers from a shared queue; with an empty queue, echoes the prompt."""

    kind = "fake"
    requires_api_key = False
    #: Echoes whatever it is sent, so it can carry anything; the catalog decides.
    supports = frozenset({"tools", "vision", "json"})
    #: Answers to give, in order, shared by every instance (per provider name).
    queues: ClassVar[dict[str, deque[Answer]]] = {}
    #: Every call made, as (provider name, call).
    history: ClassVar[list[tuple[str, ProviderCall]]] = []

    @classmethod
    def reset(cls) -> None:
        cls.queues = {}
        cls.history = []

    @classmethod
    def enqueue(cls, provider: str, *answers: Answer) -> None:
        cls.queues.setdefault(provider, deque()).extend(answers)

    async def _answer(self, call: ProviderCall) -> str:
        self.history.append((self.settings.name, call))
        queue = self.queues.get(self.settings.name)
        answer: Answer = queue.popleft() if queue else f"echo: {call.messages[-1].content}"
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            result = answer(call)
            return await result if asyncio.iscoroutine(result) else result  # type: ignore[return-value]
        return answer

    async def complete(self, call: ProviderCall) -> Completion:
        text = await self._answer(call)
        return Completion(text=text, model=call.model, usage=_usage(call, text))

    async def stream(self, call: ProviderCall) -> AsyncIterator[CompletionChunk]:
        text = await self._answer(call)
        words = text.split(" ")
        for i, word in enumerate(words):
            yield CompletionChunk(delta=word if i == 0 else " " + word)
        yield CompletionChunk(usage=_usage(call, text), model=call.model, finish_reason="stop")


def _usage(call: ProviderCall, text: str) -> Usage:
    prompt_words = sum(len(m.content.split()) for m in call.messages)
    return Usage(input_tokens=prompt_words + 4, output_tokens=len(text.split()))


class _FakeProviderPlugin:
    __name__ = "fake_provider_plugin"

    @hookimpl
    def register_providers(self, register: Callable[[type[Provider]], None]) -> None:
        register(FakeProvider)


fake_provider_plugin = _FakeProviderPlugin()

__all__ = ["TEST_CONFIG", "FakeProvider", "ProviderError", "fake_provider_plugin"]


@pytest.fixture
def modelrouter_config() -> Config:
    """The test catalog (``TEST_CONFIG``) over fake providers."""
    return parse_config(TEST_CONFIG, source="TEST_CONFIG")


@pytest.fixture
async def modelrouter_server_factory(
    modelrouter_config: Config,
) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """Start real in-process servers on free ports; all are stopped after the test."""
    from .server import create_server

    FakeProvider.reset()
    started = []

    async def start(
        config: Config | None = None, plugins: Iterable[object] = (), **kwargs: Any
    ) -> Any:
        # No HTTP face unless asked for (``http_port=-1``: a free port, ``server.http.port``).
        kwargs.setdefault("http_port", 0)
        server = await create_server(
            config or modelrouter_config,
            host="127.0.0.1",
            port=0,
            plugins=[fake_provider_plugin, *plugins],
            **kwargs,
        )
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop(grace=0)
    FakeProvider.reset()


@pytest.fixture
async def modelrouter_stub(
    modelrouter_server_factory: Callable[..., Awaitable[Any]],
) -> AsyncIterator[Any]:
    """A ``ModelRouterStub`` connected to a fresh server on the test catalog.

    ``stub.server`` is the running ``ModelRouterServer``.
    """
    from .v1 import router_pb2_grpc

    server = await modelrouter_server_factory()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = router_pb2_grpc.ModelRouterStub(channel)
        yield SimpleNamespace(stub=stub, server=server, channel=channel)
