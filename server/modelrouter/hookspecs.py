"""Every extension point of modelrouter.

Plugins implement these with ``@modelrouter.hookimpl`` and are discovered through the
``modelrouter`` entry-point group. Hooks run once, synchronously, when the plugin manager
is built; the async work lives in the objects they register.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from .base import Classifier, PluginContext, Provider

hookspec = pluggy.HookspecMarker("modelrouter")


@hookspec
def register_classifiers(register: Callable[[Classifier], None], context: PluginContext) -> None:
    """Register request classifiers.

    Called once at startup. ``register`` takes a :class:`modelrouter.Classifier` instance;
    its ``name`` must be unique across all plugins and is what callers pass as
    ``Constraints.classifier``. Registering a name twice is reported as a load error of the
    second plugin. ``context`` (a :class:`modelrouter.PluginContext`; implementations may
    leave the argument out) gives the plugin its ``[classifiers.NAME]`` options and, once
    the server runs, the catalog's models. Returns nothing.
    """


@hookspec
def register_providers(register: Callable[[type[Provider]], None]) -> None:
    """Register provider adapters.

    Called once at startup. ``register`` takes a :class:`modelrouter.Provider` subclass;
    its ``kind`` is what a ``[providers.NAME]`` table names with ``type = "..."``. The
    router instantiates it once per configured provider. Returns nothing.

    **Declaring what the provider supports.** Beyond plain text turns, a request may carry
    tools and tool turns, images, and a response format (``ProviderCall.options``,
    ``Message.parts`` / ``tool_calls`` / ``tool_call_id``). A provider class lists what its
    adapter can send upstream in ``supports``, a frozenset of ``"tools"``, ``"vision"`` and
    ``"json"`` (default: empty, text only)::

        class MyProvider(Provider):
            kind = "my-api"
            supports = frozenset({"tools", "json"})

            async def complete(self, call):
                upstream.check_supported(call, self.supports, self.settings.name)
                ...

    Routing decides from the catalog: a model is chosen for a request needing ``tools``,
    ``vision`` or ``json`` only when its ``capabilities`` in ``[[models]]`` list them, so
    list a capability there only if the model and its provider both have it. The adapter
    must still refuse a call it cannot carry with ``ProviderError(kind="unsupported",
    retryable=False)`` (``upstream.check_supported`` does that) and never drop tools,
    images or a schema silently. Streamed tool calls are yielded as
    ``CompletionChunk(tool_call_delta=ToolCallDelta(index, id, name, arguments))``;
    whole ones as ``Completion.tool_calls`` with ``finish_reason="tool_calls"``.
    ``options.stop``, ``top_p`` and ``seed`` are best effort: send those the API takes.
    """
