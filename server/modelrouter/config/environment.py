"""Every environment variable the server and its CLI read, declared in one place.

Code reads a variable through :class:`Environment`, which refuses names not declared here,
so this table (and the one generated from it in docs/configuration.md) cannot miss one.
Tests pass their own mapping instead of touching ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["VARIABLES", "Environment", "Variable"]


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    doc: str
    #: Who reads it, for the docs: a module or a CLI option.
    used_by: str
    #: What an unset variable means, for the docs.
    unset: str = ""


VARIABLES: tuple[Variable, ...] = (
    Variable(
        "MODELROUTER_CONFIG",
        "configuration file, when `--config` is not given",
        "config",
        "the shipped default_config.toml",
    ),
    Variable("MODELROUTER_LOG_LEVEL", "default `serve --log-level`", "cli", "INFO"),
    Variable(
        "MODELROUTER_TARGET", "default `--target` of client commands", "cli", "localhost:50051"
    ),
    Variable(
        "MODELROUTER_API_KEY",
        "default `--api-key` of client commands (sent as a bearer token)",
        "cli",
        "no key sent",
    ),
    Variable(
        "MODELROUTER_LOAD_PLUGINS",
        "comma-separated entry-point names to load (empty: none)",
        "plugins",
        "every installed plugin",
    ),
    Variable(
        "MODELROUTER_EVENT_LOOP",
        "`asyncio` keeps asyncio's loop even when uvloop is installed",
        "eventloop",
        "uvloop when installed",
    ),
    Variable(
        "MODELROUTER_LEARNED_ARTIFACT",
        "artifact of the `learned` classifier when `[classifiers.learned] artifact` is unset",
        "modelrouter_learned",
        "the learned classifier is not registered",
    ),
    Variable(
        "XDG_CACHE_HOME",
        "embedding cache of `modelrouter eval`/`train` is `$XDG_CACHE_HOME/modelrouter`",
        "learning",
        "~/.cache",
    ),
    # The standard OpenTelemetry variables, read by telemetry/setup.py (docs/telemetry.md).
    Variable("OTEL_SDK_DISABLED", "`true`: no exporters at all", "telemetry", "false"),
    Variable("OTEL_SERVICE_NAME", "overrides `telemetry.service_name`", "telemetry"),
    Variable("OTEL_RESOURCE_ATTRIBUTES", "extra resource attributes, `k=v,k2=v2`", "telemetry"),
    Variable("OTEL_TRACES_EXPORTER", "`otlp` or `none`; when set it decides", "telemetry"),
    Variable("OTEL_METRICS_EXPORTER", "comma list of `otlp`, `prometheus`, `none`", "telemetry"),
    Variable("OTEL_EXPORTER_OTLP_ENDPOINT", "overrides `telemetry.otlp_endpoint`", "telemetry"),
    Variable("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "trace endpoint, used as given", "telemetry"),
    Variable("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "metric endpoint, used as given", "telemetry"),
    Variable("OTEL_EXPORTER_OTLP_PROTOCOL", "`grpc` or `http/protobuf`", "telemetry"),
    Variable("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "protocol of traces only", "telemetry"),
    Variable("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "protocol of metrics only", "telemetry"),
    Variable("OTEL_EXPORTER_OTLP_HEADERS", "export headers `k=v,k2=v2`", "telemetry"),
    Variable("OTEL_METRIC_EXPORT_INTERVAL", "metric export interval, ms", "telemetry"),
    Variable("OTEL_EXPORTER_PROMETHEUS_HOST", "Prometheus endpoint address", "telemetry"),
    Variable("OTEL_EXPORTER_PROMETHEUS_PORT", "Prometheus endpoint port", "telemetry"),
    Variable(
        "OTEL_TRACES_SAMPLER",
        "`(parentbased_)traceidratio`, `always_on`, `always_off`",
        "telemetry",
    ),
    Variable("OTEL_TRACES_SAMPLER_ARG", "ratio of `traceidratio`", "telemetry"),
    Variable(
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
        "`true`/`false`: overrides `telemetry.capture_content`",
        "telemetry",
    ),
)
_DECLARED = {v.name: v for v in VARIABLES}

#: Named by the configuration rather than here: ``[providers.NAME] api_key_env``.
PROVIDER_KEY_DOC = "API key of a provider, in the variable its `api_key_env` names"


class Environment:
    """Reads the declared variables from ``environ`` (default: ``os.environ``)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def get(self, name: str, default: str | None = None) -> str | None:
        """The variable's value, or ``default`` when unset. ``name`` must be declared."""
        if name not in _DECLARED:
            raise KeyError(f"{name} is not declared in modelrouter.config.environment.VARIABLES")
        return self._environ.get(name, default)

    def provider_key(self, variable: str) -> str | None:
        """A provider's API key, from the variable its ``api_key_env`` names."""
        return self._environ.get(variable)

    def cache_home(self) -> Path:
        """``$XDG_CACHE_HOME``, else ``~/.cache``."""
        return Path(self.get("XDG_CACHE_HOME") or Path.home() / ".cache")
