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
    """
