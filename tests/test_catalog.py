"""Providers registered through `register_providers` serve the catalog's models."""

from __future__ import annotations

from modelrouter import Provider, hookimpl
from modelrouter.catalog import Catalog
from modelrouter.config import load_config
from modelrouter.plugins import load_plugins
from modelrouter.testing import FakeProvider, fake_provider_plugin


def test_registered_provider_type_serves_configured_providers(modelrouter_config):
    registry = load_plugins([fake_provider_plugin])
    assert registry.provider_types["fake"] is FakeProvider
    info = next(p for p in registry.plugins if p.name == "fake_provider_plugin")
    assert info.hooks == ["register_providers"] and info.registered == ["provider:fake"]
    catalog = Catalog(modelrouter_config, registry.provider_types, environ={})
    assert set(catalog.providers) == {"budget", "premium"}


def test_models_of_a_provider_without_its_key_or_plugin_are_unavailable(monkeypatch):
    # Load no installed entry points, so the built-in openai plugin is absent here.
    monkeypatch.setenv("MODELROUTER_LOAD_PLUGINS", "")
    config = load_config()
    registry = load_plugins([fake_provider_plugin])
    catalog = Catalog(config, registry.provider_types, environ={})
    reason = catalog.unavailable_reason(catalog.get("gpt-4o-mini"))
    assert reason is not None and "no provider plugin of type 'openai'" in reason


def test_provider_needing_a_key_is_unavailable_until_the_variable_is_set(modelrouter_config):
    class KeyedProvider(FakeProvider):
        kind = "keyed"
        requires_api_key = True

    class Plugin:
        @hookimpl
        def register_providers(self, register):
            register(KeyedProvider)

    text = '[providers.vendor]\ntype = "keyed"\napi_key_env = "VENDOR_KEY"\n'
    from modelrouter.config import parse_config
    from modelrouter.testing import TEST_CONFIG

    config = parse_config(
        TEST_CONFIG.replace('[providers.premium]\ntype = "fake"', text.strip()).replace(
            'provider = "premium"', 'provider = "vendor"'
        )
    )
    registry = load_plugins([Plugin()])
    without = Catalog(config, registry.provider_types, environ={})
    assert (
        without.unavailable_reason(without.get("large"))
        == "environment variable VENDOR_KEY is not set"
    )
    with_key = Catalog(config, registry.provider_types, environ={"VENDOR_KEY": "sk-test-123"})
    assert with_key.unavailable_reason(with_key.get("large")) is None
    assert isinstance(with_key.providers["vendor"], Provider)
    assert with_key.providers["vendor"].settings.api_key == "sk-test-123"
