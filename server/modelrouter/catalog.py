"""The model catalog and the provider instances that serve it.

A model is available when its provider is configured, a plugin of the provider's type is
installed, and the provider's API key (if it needs one) is present in the environment.
Unavailable models are listed with the reason and skipped by selection.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .base import Provider, ProviderSettings
from .config import Config, ModelSpec
from .config.environment import Environment
from .errors import ModelUnavailable, NotFound

if TYPE_CHECKING:
    from .execution.circuit import CircuitBreaker

log = logging.getLogger(__name__)


class Catalog:
    def __init__(
        self,
        config: Config,
        provider_types: Mapping[str, type[Provider]],
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = Environment(environ)
        self.models: dict[str, ModelSpec] = {m.name: m for m in config.models}
        self.providers: dict[str, Provider] = {}
        #: Provider name -> why its models cannot be used.
        self.provider_problems: dict[str, str] = {}
        #: Providers whose only problem is an unset API key variable: their models can
        #: still be chosen by Route (a caller that holds its own keys calls them itself).
        self.missing_keys: set[str] = set()
        #: Consulted by :meth:`unavailable_reason`: a model cooling down after failures is
        #: skipped by selection and listed as unavailable. Set by the server's executor.
        self.breaker: CircuitBreaker | None = None
        for name, provider_config in config.providers.items():
            provider_type = provider_types.get(provider_config.type)
            if provider_type is None:
                installed = ", ".join(sorted(provider_types)) or "none"
                self.provider_problems[name] = (
                    f"no provider plugin of type {provider_config.type!r} is installed "
                    f"(installed: {installed})"
                )
                continue
            api_key = (
                env.provider_key(provider_config.api_key_env)
                if provider_config.api_key_env
                else None
            )
            # An OpenAI-compatible server on the operator's own base_url often needs no
            # key: without api_key_env configured, a base_url stands in for one.
            needs_key = provider_type.requires_api_key and (
                provider_config.api_key_env is not None or provider_config.base_url is None
            )
            if needs_key and not api_key:
                variable = provider_config.api_key_env or "(no api_key_env configured)"
                self.provider_problems[name] = f"environment variable {variable} is not set"
                self.missing_keys.add(name)
                continue
            settings = ProviderSettings(
                name=name,
                api_key=api_key,
                base_url=provider_config.base_url,
                options=provider_config.options,
            )
            try:
                self.providers[name] = provider_type(settings)
            except Exception as exc:  # a plugin's constructor may fail in any way
                self.provider_problems[name] = (
                    f"provider failed to start: {type(exc).__name__}: {exc}"
                )
        for name, problem in sorted(self.provider_problems.items()):
            models = [m.name for m in config.models if m.provider == name]
            if models:
                log.warning(
                    "provider %s unavailable (%s); models skipped: %s", name, problem, models
                )

    def get(self, name: str) -> ModelSpec:
        try:
            return self.models[name]
        except KeyError:
            raise NotFound("model", name, list(self.models)) from None

    def unavailable_reason(self, model: ModelSpec) -> str | None:
        """Why ``model`` cannot be called now, or ``None`` when it can."""
        problem = self.provider_problems.get(model.provider)
        if problem is None and self.breaker is not None:
            problem = self.breaker.open_reason(model.name)
        return problem

    def routing_unavailable_reason(self, model: ModelSpec) -> str | None:
        """Why Route cannot choose ``model``: like :meth:`unavailable_reason`, except that
        a missing API key does not stop Route (see :meth:`not_executable_reason`)."""
        if model.provider in self.missing_keys:
            return self.cooling_reason(model)
        return self.unavailable_reason(model)

    def not_executable_reason(self, model: ModelSpec) -> str | None:
        """Why this server cannot call ``model`` although Route may choose it (its API key
        variable is unset), or ``None``."""
        if model.provider in self.missing_keys:
            return self.provider_problems[model.provider]
        return None

    def resolve(self, name: str) -> tuple[Provider, str]:
        """(provider, upstream model id) of catalog model ``name``, for plugins that call models."""
        model = self.get(name)
        return self.provider_for(model), model.upstream_model

    def cooling_reason(self, model: ModelSpec) -> str | None:
        """Why ``model`` is skipped for now only (its circuit is open), or ``None``."""
        return self.breaker.open_reason(model.name) if self.breaker is not None else None

    def provider_for(self, model: ModelSpec) -> Provider:
        """The provider serving ``model``, even while its circuit is open (the executor
        decides about cooling models); ``ModelUnavailable`` when it cannot work at all."""
        reason = self.provider_problems.get(model.provider)
        if reason is not None:
            raise ModelUnavailable(model.name, reason)
        return self.providers[model.provider]

    async def aclose(self) -> None:
        for provider in self.providers.values():
            try:
                await provider.aclose()
            except Exception:  # closing must go on for the other providers
                log.exception("closing provider %s failed", provider.settings.name)
