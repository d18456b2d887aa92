"""Base classes that plugins implement.

A plugin registers instances (classifiers) or classes (providers) through the hooks in
``modelrouter.hookspecs``; the async work happens in the methods declared here.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

from .types import Classification, Message, RoutingRequest


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


@dataclass(frozen=True, slots=True)
class Completion:
    """A finished answer from a provider."""

    text: str
    model: str
    usage: Usage
    finish_reason: str = "stop"


@dataclass(frozen=True, slots=True)
class CompletionChunk:
    """A piece of a streamed answer; the last chunk carries ``usage`` if the provider reports it."""

    delta: str = ""
    usage: Usage | None = None
    model: str | None = None
    finish_reason: str | None = None


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

    def options(self, name: str) -> Mapping[str, object]:
        return self._options.get(name, {})

    def require_model(self, model: str, *, key: str) -> None:
        """Declare that setting ``key`` (say ``classifiers.llm-judge.model``) names ``model``."""
        self._required[key] = model

    @property
    def required_models(self) -> Mapping[str, str]:
        return dict(self._required)

    def bind(self, resolve: Callable[[str], tuple[Provider, str]]) -> None:
        """Called by the server once the catalog exists."""
        self._resolve = resolve

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
