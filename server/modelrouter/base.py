"""Base classes that plugins implement.

A plugin registers instances (classifiers) or classes (providers) through the hooks in
``modelrouter.hookspecs``; the async work happens in the methods declared here.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

from .config import ModelSpec
from .types import (
    NO_OPTIONS,
    CallOptions,
    Classification,
    Message,
    RoutingRequest,
    ToolCall,
    needed_capabilities,
)


class Classifier(abc.ABC):
    """Decides the complexity and task type of a request.

    Subclasses set ``name`` (unique across plugins; what callers pass as
    ``Constraints.classifier``) and implement :meth:`classify`. ``classify`` must not block
    the event loop: CPU-heavy work belongs in ``asyncio.to_thread``.
    """

    name: str = ""

    @abc.abstractmethod
    async def classify(self, request: RoutingRequest) -> Classification:
        """Return the classification of ``request``. Raise only for faults, not for odd input."""


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """What the operator configured for one provider instance (``[providers.NAME]``)."""

    name: str
    #: The API key read from the configured environment variable, or ``None``.
    api_key: str | None = None
    #: Upstream base URL; only ever from the operator's config, never from a request.
    base_url: str | None = None
    #: Provider-specific options from the config table, as given.
    options: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts as reported by the provider."""

    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True, slots=True)
class ProviderCall:
    """One call to one upstream model."""

    #: The provider's own model identifier (``ModelSpec.upstream_model``).
    model: str
    messages: tuple[Message, ...]
    max_output_tokens: int
    #: Seconds left before the caller's deadline, or ``None`` for no deadline.
    timeout_s: float | None = None
    temperature: float | None = None
    #: Tools, tool choice, response format, stop sequences, top_p and seed.
    options: CallOptions = NO_OPTIONS

    def needed_capabilities(self) -> frozenset[str]:
        """What serving this call takes (``tools``, ``vision``, ``json``); a provider whose
        ``supports`` lacks one must refuse the call (see :func:`upstream.check_supported`)."""
        return needed_capabilities(self.messages, self.options)


@dataclass(frozen=True, slots=True)
class Completion:
    """A finished answer from a provider.

    ``tool_calls`` are the tools the model called (``finish_reason`` is then
    ``"tool_calls"``); ``text`` may be empty.
    """

    text: str
    model: str
    usage: Usage
    finish_reason: str = "stop"
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of one streamed tool call.

    Pieces of one call share ``index`` (its position among the answer's calls, from 0);
    pieces of several calls may interleave. ``id`` and ``name`` come with a call's first
    piece (``None`` after); ``arguments`` is the next fragment of its ``arguments_json``.
    """

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class CompletionChunk:
    """A piece of a streamed answer: a text ``delta`` or a ``tool_call_delta``. The last
    chunk carries ``usage`` if the provider reports it."""

    delta: str = ""
    usage: Usage | None = None
    model: str | None = None
    finish_reason: str | None = None
    tool_call_delta: ToolCallDelta | None = None


class ToolCallAssembler:
    """Folds streamed :class:`ToolCallDelta` pieces into complete :class:`ToolCall` s.

    Feed every delta to :meth:`add`; :attr:`tool_calls` gives the calls so far, ordered by
    index, each with its fragments joined (an empty argument string reads as ``"{}"``).
    Linear in the total size of the fragments, whatever the interleaving.
    """

    __slots__ = ("_fragments", "_ids", "_names")

    def __init__(self) -> None:
        self._ids: dict[int, str] = {}
        self._names: dict[int, str] = {}
        self._fragments: dict[int, list[str]] = {}

    def add(self, delta: ToolCallDelta) -> None:
        index = delta.index
        fragments = self._fragments.setdefault(index, [])
        if delta.id:
            self._ids.setdefault(index, delta.id)
        if delta.name:
            self._names.setdefault(index, delta.name)
        if delta.arguments:
            fragments.append(delta.arguments)

    def __bool__(self) -> bool:
        return bool(self._fragments)

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(
            ToolCall(
                id=self._ids.get(index, ""),
                name=self._names.get(index, ""),
                arguments_json="".join(self._fragments[index]) or "{}",
            )
            for index in sorted(self._fragments)
        )


class PluginContext:
    """What the server offers plugins when they register.

    ``options(name)`` is the ``[classifiers.NAME]`` table of the configuration, as given
    (empty when absent): plugins validate their own options. ``require_model`` declares that
    the plugin will call a catalog model; the server checks the name when it has built the
    catalog and refuses to start on an unknown one. ``provider_for`` resolves a catalog
    model to its provider and upstream model id; it works only after startup, so call it
    from ``classify``, never from a hook.
    """

    def __init__(self, options: Mapping[str, Mapping[str, object]] | None = None) -> None:
        self._options = options or {}
        self._required: dict[str, str] = {}
        self._resolve: Callable[[str], tuple[Provider, str]] | None = None
        self._spec: Callable[[str], ModelSpec] | None = None

    def options(self, name: str) -> Mapping[str, object]:
        return self._options.get(name, {})

    def require_model(self, model: str, *, key: str) -> None:
        """Declare that setting ``key`` (say ``classifiers.llm-judge.model``) names ``model``."""
        self._required[key] = model

    @property
    def required_models(self) -> Mapping[str, str]:
        return dict(self._required)

    def bind(
        self,
        resolve: Callable[[str], tuple[Provider, str]],
        spec: Callable[[str], ModelSpec] | None = None,
    ) -> None:
        """Called by the server once the catalog exists."""
        self._resolve = resolve
        self._spec = spec

    def model_spec(self, model: str) -> ModelSpec:
        """The catalog entry of ``model`` (prices, window, capabilities): what a plugin
        that calls a model needs to say what the call cost."""
        if self._spec is None:
            raise RuntimeError("model_spec is available once the server has started")
        return self._spec(model)

    def provider_for(self, model: str) -> tuple[Provider, str]:
        """(provider, upstream model id) of a catalog model; raises ``ModelUnavailable``."""
        if self._resolve is None:
            raise RuntimeError("provider_for is available once the server has started")
        return self._resolve(model)


class Provider(abc.ABC):
    """Calls one kind of upstream API.

    Registered as a class; the router instantiates it once per configured provider with
    its :class:`ProviderSettings`. ``kind`` is what ``type = "..."`` names in the config.
    """

    kind: str = ""
    #: Whether this provider needs an API key to work (local models do not).
    requires_api_key: bool = True
    #: What this provider's adapter can send upstream beyond plain text turns: ``"tools"``
    #: (tools, tool calls and tool turns), ``"vision"`` (image parts), ``"json"`` (a
    #: response format). The catalog's per-model ``capabilities`` stay the routing truth
    #: (a model may lack what its provider supports); this says what the adapter can
    #: carry at all. A call needing anything else must raise
    #: ``ProviderError(kind="unsupported", retryable=False)`` (see
    #: ``upstream.check_supported``), never silently drop it.
    supports: frozenset[str] = frozenset()

    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings

    @abc.abstractmethod
    async def complete(self, call: ProviderCall) -> Completion:
        """Return the whole answer. Raise ``modelrouter.ProviderError`` for upstream failures."""

    @abc.abstractmethod
    def stream(self, call: ProviderCall) -> AsyncIterator[CompletionChunk]:
        """Yield the answer as it is generated; the final chunk carries usage."""

    async def aclose(self) -> None:  # noqa: B027 (optional: most providers hold nothing)
        """Release connections and models. Called once at server shutdown."""
