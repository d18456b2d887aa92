"""Discovering and loading plugins.

Plugins are pluggy plugins found through the ``modelrouter`` entry-point group; the
built-in classifiers and providers are registered there exactly like third-party ones.
Each entry point is loaded on its own so that one broken plugin is reported (in the log
and by ``ListPlugins``) and skipped, never fatal unless the operator asks for strict
mode. ``MODELROUTER_LOAD_PLUGINS`` (comma-separated entry-point names) limits which load;
set it to an empty string to load none.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata

import pluggy

from . import hookspecs
from .base import Classifier, PluginContext, Provider
from .config.environment import Environment
from .errors import ConfigError

ENTRY_POINT_GROUP = "modelrouter"
ALLOWLIST_ENV = "MODELROUTER_LOAD_PLUGINS"

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PluginInfo:
    """What ``ListPlugins`` reports of one plugin."""

    name: str
    distribution: str = ""
    version: str = ""
    hooks: list[str] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)
    load_error: str = ""


@dataclass(slots=True)
class PluginRegistry:
    """Everything the plugins registered, and how loading each of them went."""

    classifiers: dict[str, Classifier] = field(default_factory=dict)
    provider_types: dict[str, type[Provider]] = field(default_factory=dict)
    plugins: list[PluginInfo] = field(default_factory=list)

    @property
    def failures(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.load_error]


def build_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    return pm


def load_plugins(
    extra_plugins: Iterable[object] = (),
    *,
    strict: bool = False,
    context: PluginContext | None = None,
) -> PluginRegistry:
    """Load every allowed entry-point plugin plus ``extra_plugins`` (objects or modules).

    ``extra_plugins`` is how tests and embedders add plugins without installing a
    distribution. With ``strict``, the first plugin that fails raises ``ConfigError``.
    """
    pm = build_plugin_manager()
    registry = PluginRegistry()
    context = context or PluginContext()
    allowlist = _allowlist()
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if allowlist is not None and entry_point.name not in allowlist:
            continue
        dist = entry_point.dist
        info = PluginInfo(
            name=entry_point.name,
            distribution=dist.name if dist else "",
            version=dist.version if dist else "",
        )
        try:
            plugin = entry_point.load()
        except Exception as exc:  # a plugin's import may fail in any way
            _record_failure(registry, info, f"import failed: {type(exc).__name__}: {exc}", strict)
            continue
        _register(pm, registry, plugin, info, strict, context)
    for plugin in extra_plugins:
        name = getattr(plugin, "__name__", None) or type(plugin).__name__
        _register(pm, registry, plugin, PluginInfo(name=name), strict, context)
    return registry


def _allowlist() -> set[str] | None:
    value = Environment().get(ALLOWLIST_ENV)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def _register(
    pm: pluggy.PluginManager,
    registry: PluginRegistry,
    plugin: object,
    info: PluginInfo,
    strict: bool,
    context: PluginContext,
) -> None:
    try:
        pm.register(plugin, name=info.name)
        # A hook implementation with a misspelt name would otherwise be ignored silently.
        pm.check_pending()
    except Exception as exc:
        if pm.is_registered(plugin):
            pm.unregister(plugin)
        _record_failure(registry, info, f"invalid plugin: {exc}", strict)
        return
    info.hooks = sorted(
        caller.name for caller in pm.get_hookcallers(plugin) or [] if caller.name != "__init__"
    )
    classifiers: list[Classifier] = []
    provider_types: list[type[Provider]] = []
    # Call the hooks of this plugin alone, so that what it registers is attributed to it.
    others = [p for p in pm.get_plugins() if p is not plugin]
    try:
        pm.subset_hook_caller("register_classifiers", others)(
            register=classifiers.append, context=context
        )
        pm.subset_hook_caller("register_providers", others)(register=provider_types.append)
        _validate(registry, classifiers, provider_types)
    except Exception as exc:
        pm.unregister(plugin)
        _record_failure(registry, info, f"registration failed: {type(exc).__name__}: {exc}", strict)
        return
    for classifier in classifiers:
        registry.classifiers[classifier.name] = classifier
        info.registered.append(f"classifier:{classifier.name}")
    for provider_type in provider_types:
        registry.provider_types[provider_type.kind] = provider_type
        info.registered.append(f"provider:{provider_type.kind}")
    registry.plugins.append(info)


def _validate(
    registry: PluginRegistry,
    classifiers: list[Classifier],
    provider_types: list[type[Provider]],
) -> None:
    for classifier in classifiers:
        if not isinstance(classifier, Classifier) or not classifier.name:
            raise TypeError(f"{classifier!r} is not a modelrouter.Classifier with a name")
        if classifier.name in registry.classifiers:
            raise ValueError(f"classifier name {classifier.name!r} is already registered")
    for provider_type in provider_types:
        if not (isinstance(provider_type, type) and issubclass(provider_type, Provider)):
            raise TypeError(f"{provider_type!r} is not a modelrouter.Provider subclass")
        if not provider_type.kind:
            raise TypeError(f"{provider_type.__name__} has no `kind`")
        if provider_type.kind in registry.provider_types:
            raise ValueError(f"provider kind {provider_type.kind!r} is already registered")


def _record_failure(registry: PluginRegistry, info: PluginInfo, error: str, strict: bool) -> None:
    info.load_error = error
    registry.plugins.append(info)
    label = f"{info.name} ({info.distribution} {info.version})" if info.distribution else info.name
    log.error("plugin %s not loaded: %s", label, error)
    if strict:
        raise ConfigError(f"plugin {label} failed to load (strict_plugins is on): {error}")
