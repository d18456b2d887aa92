"""The configuration file: one TOML file, validated against a schema on load.

Every key is declared once in ``schema.py`` (and ``state.py``, ``telemetry.py``) with its
type, default, bounds and doc; ``docs/configuration.md`` is generated from them. Every
problem in a file is reported at once, one line each, naming the file, the key path and
what was expected, for example::

    config.toml: models[2].quality: expected a number in [0, 1], got 1.5
    config.toml: server.prot: unknown key (did you mean port?)

The shipped default is ``default_config.toml`` beside this package; ``MODELROUTER_CONFIG``
or ``serve --config`` names another. Environment variables are declared in
``environment.py``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import resources

from .environment import Environment
from .loading import parse_config, read_config
from .schema import (
    Config,
    ExecutionConfig,
    HttpConfig,
    LimitsConfig,
    ModelSpec,
    ProviderConfig,
    RoutingConfig,
    ServerConfig,
)
from .shadow import ShadowConfig
from .state import (
    AdaptiveConfig,
    ApiKey,
    AuthConfig,
    BudgetLimits,
    BudgetsConfig,
    DegradeTier,
    StateConfig,
    StorageConfig,
)
from .telemetry import TelemetryConfig

__all__ = [
    "DEFAULT_CONFIG_NAME",
    "AdaptiveConfig",
    "ApiKey",
    "AuthConfig",
    "BudgetLimits",
    "BudgetsConfig",
    "Config",
    "DegradeTier",
    "ExecutionConfig",
    "HttpConfig",
    "LimitsConfig",
    "ModelSpec",
    "ProviderConfig",
    "RoutingConfig",
    "ServerConfig",
    "ShadowConfig",
    "StateConfig",
    "StorageConfig",
    "TelemetryConfig",
    "load_config",
    "parse_config",
]

DEFAULT_CONFIG_NAME = "default_config.toml"


def load_config(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Load and validate ``path``, ``$MODELROUTER_CONFIG``, or the shipped default."""
    path = path or Environment(environ).get("MODELROUTER_CONFIG")
    if path is None:
        text = resources.files("modelrouter").joinpath(DEFAULT_CONFIG_NAME).read_text("utf-8")
        return parse_config(text, source=DEFAULT_CONFIG_NAME)
    return read_config(path)
