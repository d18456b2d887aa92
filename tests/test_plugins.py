"""Plugin discovery through entry points, and what happens when a plugin is broken."""

from __future__ import annotations

import importlib
import inspect
import sys
import textwrap
from pathlib import Path

import pytest

import modelrouter
from modelrouter import Classifier, hookimpl, hookspecs
from modelrouter.errors import ConfigError
from modelrouter.plugins import load_plugins


@pytest.fixture
def installed_distribution(tmp_path, monkeypatch):
    """Install a distribution the way pip does (a module plus a .dist-info with entry points).

    Returns a function ``install(dist_name, module_name, source)``.
    """
    monkeypatch.syspath_prepend(str(tmp_path))

    def install(dist_name: str, module_name: str, source: str) -> None:
        (tmp_path / f"{module_name}.py").write_text(textwrap.dedent(source))
        dist_info = tmp_path / f"{dist_name.replace('-', '_')}-1.2.3.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: 1.2.3\n"
        )
        (dist_info / "entry_points.txt").write_text(
            f"[modelrouter]\n{module_name} = {module_name}\n"
        )
        importlib.invalidate_caches()

    yield install
    for name in [m for m in sys.modules if m.startswith("mr_test_")]:
        del sys.modules[name]


def test_builtin_rules_and_example_plugin_are_discovered_through_entry_points():
    registry = load_plugins()
    assert {"rules", "conversation-length"} <= set(registry.classifiers)
    assert not registry.failures


def test_plugin_that_fails_to_import_is_reported_and_skipped(installed_distribution, caplog):
    installed_distribution("broken-plugin", "mr_test_broken", "raise ImportError('needs libfoo')\n")
    registry = load_plugins()
    failure = next(p for p in registry.plugins if p.name == "mr_test_broken")
    assert failure.distribution == "broken-plugin" and failure.version == "1.2.3"
    assert "needs libfoo" in failure.load_error
    assert "rules" in registry.classifiers  # everything else still loaded
    assert "mr_test_broken (broken-plugin 1.2.3)" in caplog.text


def test_plugin_whose_hook_raises_is_reported(installed_distribution):
    installed_distribution(
        "raising-plugin",
        "mr_test_raising",
        """
        from modelrouter import hookimpl

        @hookimpl
        def register_classifiers(register):
            raise RuntimeError("config missing")
        """,
    )
    registry = load_plugins()
    failure = next(p for p in registry.plugins if p.name == "mr_test_raising")
    assert "registration failed: RuntimeError: config missing" in failure.load_error


def test_misspelt_hook_fails_loudly(installed_distribution):
    installed_distribution(
        "typo-plugin",
        "mr_test_typo",
        """
        from modelrouter import hookimpl

        @hookimpl
        def register_clasifiers(register):
            pass
        """,
    )
    registry = load_plugins()
    failure = next(p for p in registry.plugins if p.name == "mr_test_typo")
    assert "register_clasifiers" in failure.load_error


def test_duplicate_classifier_name_is_a_load_error_of_the_second_plugin():
    class Impostor(Classifier):
        name = "rules"

        async def classify(self, request):
            raise AssertionError

    class Plugin:
        @hookimpl
        def register_classifiers(self, register):
            register(Impostor())

    registry = load_plugins([Plugin()])
    failure = next(p for p in registry.plugins if p.name == "Plugin")
    assert "already registered" in failure.load_error
    assert type(registry.classifiers["rules"]).__name__ == "RulesClassifier"


def test_strict_mode_refuses_to_start_with_a_broken_plugin(installed_distribution):
    installed_distribution("broken-plugin", "mr_test_strict", "raise ImportError('nope')\n")
    with pytest.raises(ConfigError, match="strict_plugins"):
        load_plugins(strict=True)


def test_allowlist_env_limits_which_entry_points_load(monkeypatch):
    monkeypatch.setenv("MODELROUTER_LOAD_PLUGINS", "rules")
    assert set(load_plugins().classifiers) == {"rules"}
    monkeypatch.setenv("MODELROUTER_LOAD_PLUGINS", "")
    assert load_plugins().classifiers == {}


async def test_server_with_broken_plugin_still_serves_and_lists_it(
    installed_distribution, modelrouter_server_factory
):
    import grpc

    from modelrouter.v1 import router_pb2 as pb
    from modelrouter.v1 import router_pb2_grpc

    installed_distribution("broken-plugin", "mr_test_served", "raise ImportError('needs libfoo')\n")
    server = await modelrouter_server_factory()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = router_pb2_grpc.ModelRouterStub(channel)
        plugins = (await stub.ListPlugins(pb.ListPluginsRequest())).plugins
        route = await stub.Route(
            pb.RouteRequest(messages=[pb.Message(role=pb.ROLE_USER, content="hi")])
        )
    assert "needs libfoo" in next(p for p in plugins if p.name == "mr_test_served").load_error
    assert route.selected.model


def test_every_hookspec_is_documented_and_exercised():
    specs = [
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, "modelrouter_spec")
    ]
    assert specs == ["register_classifiers", "register_providers"]
    this_file = Path(__file__)
    tests_text = "".join(
        p.read_text() for p in this_file.parent.glob("test_*.py") if p != this_file
    )
    for name in specs:
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert len(doc) > 80, f"hook {name} needs a docstring saying when it runs and what it takes"
        assert name in tests_text, f"hook {name} is not exercised by any test"


def test_plugin_authors_import_everything_from_modelrouter():
    for name in (
        "hookimpl",
        "Classification",
        "Complexity",
        "TaskType",
        "Classifier",
        "Provider",
        "RoutingRequest",
        "Message",
        "Constraints",
        "ProviderCall",
        "Completion",
    ):
        assert name in modelrouter.__all__
