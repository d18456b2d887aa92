from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from modelrouter.config import ModelSpec, load_config, parse_config, reference
from modelrouter.config.environment import Environment
from modelrouter.config.show import as_json, as_toml, redact_url
from modelrouter.errors import ConfigError
from modelrouter.testing import TEST_CONFIG
from modelrouter.types import Complexity, TaskType


def test_shipped_default_config_loads_with_a_local_tier():
    config = load_config()
    assert config.routing.default_classifier == "rules"
    assert any(m.provider == "local" for m in config.models)
    assert {"local", "openai", "anthropic"} <= set(config.providers)


def test_config_file_is_read_from_path(tmp_path):
    path = tmp_path / "router.toml"
    path.write_text(TEST_CONFIG)
    config = load_config(path)
    assert [m.name for m in config.models] == ["tiny", "small-coder", "large"]
    assert config.source == str(path)


def test_quality_by_task_and_complexity_are_parsed():
    config = parse_config(
        TEST_CONFIG.replace('name = "large"', 'name = "large"\nquality_by_task = { code = 0.95 }')
    )
    large = config.models[2]
    assert large.quality_for(TaskType.CODE) == 0.95
    assert large.quality_for(TaskType.CHAT) == 0.9
    assert large.max_complexity is Complexity.EXPERT


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("quality = 0.9", "quality = 1.5"),
            "router.toml: models[2].quality: expected a number in [0, 1], got 1.5",
        ),
        (
            ('provider = "premium"', 'provider = "nobody"'),
            "models[2].provider: expected a configured provider (budget, premium)",
        ),
        (
            ('max_complexity = "expert"', 'max_complexity = "genius"'),
            "models[2].max_complexity: expected one of simple, moderate, complex, expert",
        ),
        (
            ("context_window_tokens = 200000", 'context_window_tokens = "big"'),
            "models[2].context_window_tokens: expected an integer >= 1",
        ),
        (
            ('code = ["code"]', 'poetry = ["code"]'),
            "routing.task_capabilities.poetry: expected one of chat, qa",
        ),
        (("[routing]", "[routing\n"), "router.toml: not valid TOML"),
    ],
)
def test_validation_errors_name_file_key_and_expectation(tmp_path, change, message):
    path = tmp_path / "router.toml"
    path.write_text(TEST_CONFIG.replace(*change, 1))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert message in str(caught.value)


def test_misspelt_table_is_rejected_rather_than_ignored():
    with pytest.raises(
        ConfigError, match=r"^c\.toml: routng: unknown key \(did you mean routing\?\)$"
    ):
        parse_config(TEST_CONFIG + "\n[routng]\ndefault_classifier = 'x'\n", source="c.toml")


def test_duplicate_model_names_are_rejected():
    duplicated = TEST_CONFIG.replace('name = "small-coder"', 'name = "tiny"')
    with pytest.raises(ConfigError, match="duplicate model names"):
        parse_config(duplicated)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read configuration"):
        load_config(tmp_path / "absent.toml")


ISSUE_EXAMPLE = """
[server]
prot = 6000

[routing]
defualt_classifier = "rules"

[providers.x]
type = "openai"
bas_url = "http://localhost:1234/v1"

[[models]]
name = "m"
provider = "x"
input_price_usd_per_mtok = 1
output_price_usd_per_mtok = 1
context_window_tokens = 1000
typical_latency_ms = 100
quality = 0.5
qualty = 0.6
"""


def test_every_typo_of_a_file_is_reported_at_once_with_the_closest_key():
    with pytest.raises(ConfigError) as caught:
        parse_config(ISSUE_EXAMPLE, source="config.toml")
    assert str(caught.value).splitlines() == [
        "config.toml: server.prot: unknown key (did you mean port?)",
        "config.toml: routing.defualt_classifier: unknown key (did you mean default_classifier?)",
        "config.toml: providers.x.bas_url: unknown key (did you mean base_url?)",
        "config.toml: models[0].qualty: unknown key (did you mean quality?)",
    ]


def test_provider_options_pass_through_but_near_misses_of_its_keys_do_not():
    config = parse_config(
        TEST_CONFIG.replace("[providers.premium]", '[providers.premium]\nmax_tokens_field = "x"')
    )
    assert config.providers["premium"].options == {"max_tokens_field": "x"}
    with pytest.raises(
        ConfigError,
        match=r"providers\.premium\.api_key_evn: unknown key \(did you mean api_key_env\?\)",
    ):
        parse_config(
            TEST_CONFIG.replace("[providers.premium]", '[providers.premium]\napi_key_evn = "K"')
        )
    with pytest.raises(
        ConfigError, match=r"providers\.premium\.typ: unknown key \(did you mean type\?\)"
    ):
        parse_config(
            TEST_CONFIG.replace("[providers.premium]", '[providers.premium]\ntyp = "fake"')
        )


def test_unknown_key_without_a_close_match_lists_the_valid_ones():
    with pytest.raises(ConfigError) as caught:
        parse_config(TEST_CONFIG + "\n[http]\nzzz = 1\n", source="c.toml")
    assert str(caught.value) == (
        "c.toml: http.zzz: unknown key (expected one of admin_tenants, host, port)"
    )


@pytest.mark.parametrize(
    ("addition", "message"),
    [
        ('[server]\nport = "6000"', "server.port: expected an integer in [0, 65535], got '6000'"),
        ("[limits]\nmax_messages = 0", "limits.max_messages: expected an integer >= 1, got 0"),
        ('[routing]\nfloor = "firm"', "routing.floor: expected one of soft, hard, got 'firm'"),
        ("[storage]\nretention_days = 0", "storage.retention_days: expected an integer >= 1"),
        ('[storage]\nhot = "mem"', "storage.hot: expected one of memory, sqlite, redis, postgres"),
        ("[auth]\nenabled = true", "auth.keys: at least one [[auth.keys]] when auth.enabled"),
        ('[auth]\ntls_cert_file = "c.pem"', "auth.tls_key_file: tls_cert_file and tls_key_file"),
        (
            '[[auth.keys]]\ntenant = "a"\nsha256 = "abc"',
            "auth.keys[0].sha256: expected 64 hex digits (sha256 of the key), got 'abc'",
        ),
        ("[routing.min_quality]\nhard = 0.5", "routing.min_quality.hard: expected one of simple"),
        ("[telemetry]\nsample_ratio = 2", "telemetry.sample_ratio: expected a number in [0, 1]"),
        ("[execution]\nstream_idle_timeout_s = 0", "execution.stream_idle_timeout_s: expected a"),
        ("[state]\nx = 1", "state: unknown key"),
        ("source = 'x'", "source: unknown key"),
    ],
)
def test_new_and_nested_keys_are_checked_by_the_schema(addition, message):
    header, _, line = addition.rpartition("\n")
    text = (
        TEST_CONFIG.replace(f"{header}\n", f"{header}\n{line}\n", 1)
        if header and f"{header}\n" in TEST_CONFIG
        else addition + "\n" + TEST_CONFIG
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="c.toml")
    assert f"c.toml: {message}" in str(caught.value)


def test_new_keys_have_their_documented_defaults():
    config = parse_config(TEST_CONFIG)
    assert config.limits.max_messages == 1000 and config.limits.max_image_bytes == 20 * 2**20
    assert config.limits.tenant_requests_per_second == 0.0
    assert config.state.budgets.max_in_flight_per_tenant == 64
    assert config.execution.stream_idle_timeout_s == 30.0
    assert config.state.storage.retention_days == 30
    assert config.routing.session_ttl_s == 3600 and config.routing.floor == "soft"
    assert config.state.auth.allow_unauthenticated is False
    assert config.state.adaptive.pool_tenants is False
    assert config.telemetry.trust_caller_sampling is False
    assert config.server.max_concurrent_rpcs == 1000
    assert (config.http.host, config.http.port, config.http.admin_tenants) == (
        "127.0.0.1",
        8080,
        (),
    )


def test_partial_min_quality_keeps_the_other_levels():
    config = parse_config(
        TEST_CONFIG.replace("[routing]", "[routing.min_quality]\nexpert = 0.9\n[routing]")
    )
    assert config.routing.min_quality[Complexity.EXPERT] == 0.9
    assert config.routing.min_quality[Complexity.MODERATE] == 0.55


def test_config_objects_are_built_and_copied_with_validation():
    config = parse_config(TEST_CONFIG)
    lowered = dataclasses.replace(config.routing, min_quality={Complexity.EXPERT: 0.1})
    assert lowered.min_quality[Complexity.EXPERT] == 0.1
    assert lowered.min_quality[Complexity.MODERATE] == 0.55
    spec = ModelSpec(
        name="m",
        provider="p",
        upstream_model="u",
        input_price_usd_per_mtok=1.0,
        output_price_usd_per_mtok=2.0,
        context_window_tokens=10,
        typical_latency_ms=1.0,
        quality=0.5,
        max_complexity=Complexity.SIMPLE,
        capabilities=frozenset({"chat"}),
    )
    assert spec.cost_usd(1_000_000, 0) == 1.0 and spec.quality_for(TaskType.CODE) == 0.5
    with pytest.raises(ValidationError):
        dataclasses.replace(config.execution, max_attempts_per_model=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.server.port = 1  # type: ignore[misc]


def test_memory_state_refuses_several_workers():
    config = parse_config(TEST_CONFIG, source="c.toml")
    config.check_workers(1)
    with pytest.raises(ConfigError) as caught:
        config.check_workers(4)
    assert str(caught.value).startswith("c.toml: storage.hot: 'memory' keeps state inside one")
    shared = parse_config(
        TEST_CONFIG + '\n[storage]\nhot = "redis"\nlog = "sqlite"\nsqlite_path = "/tmp/x.db"\n'
    )
    shared.check_workers(4)
    in_memory_sqlite = parse_config(
        TEST_CONFIG + '\n[storage]\nhot = "redis"\nlog = "sqlite"\nsqlite_path = ":memory:"\n',
        source="c.toml",
    )
    with pytest.raises(ConfigError, match=r"c\.toml: storage\.log: 'sqlite'"):
        in_memory_sqlite.check_workers(2)


def test_shown_config_parses_back_and_hides_secrets():
    text = TEST_CONFIG + (
        '\n[storage]\nredis_url = "redis://:hunter2@cache:6379/0"\n'
        '\n[[auth.keys]]\ntenant = "acme"\nsha256 = "' + "ab" * 32 + '"\n'
        '\n[telemetry]\notlp_headers = { authorization = "Bearer t0ken" }\n'
    ).replace("[storage]", "[storage]", 1)
    config = parse_config(
        text.replace("[providers.premium]", '[providers.premium]\napi_key = "sk-1"')
    )
    shown = as_toml(config)
    for secret in ("hunter2", "ab" * 32, "t0ken", "sk-1"):
        assert secret not in shown
    assert 'redis_url = "redis://:***@cache:6379/0"' in shown
    assert json.loads(as_json(config))["providers"]["premium"]["api_key"] == "***"
    assert redact_url("postgresql://u:pw@db/x") == "postgresql://u:***@db/x"
    # Unredacted, the TOML reads back to the same configuration.
    plain = parse_config(as_toml(parse_config(TEST_CONFIG)))
    assert dataclasses.replace(plain, source="<string>") == parse_config(TEST_CONFIG)
    assert parse_config(as_toml(load_config()), source="default_config.toml") == load_config()


def test_reference_doc_matches_the_schema():
    doc = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text("utf-8")
    generated = doc.split(reference.BEGIN)[1].split(reference.END)[0]
    assert generated.strip() == reference.markdown().strip(), (
        "docs/configuration.md is stale: run python -m modelrouter.config.reference"
    )
    for key in ("max_in_flight_per_tenant", "retention_sweep_batch", "admin_tenants"):
        assert f"`{key}`" in doc


def test_environment_reads_only_declared_variables():
    env = Environment({"MODELROUTER_TARGET": "h:1", "OPENAI_API_KEY": "k", "XDG_CACHE_HOME": "/c"})
    assert env.get("MODELROUTER_TARGET") == "h:1"
    assert env.provider_key("OPENAI_API_KEY") == "k"
    assert env.cache_home() == Path("/c")
    with pytest.raises(KeyError, match="not declared"):
        env.get("MODELROUTER_TYPO")
    with pytest.raises(ConfigError, match=r"/nonexistent\.toml: cannot read configuration"):
        load_config(environ={"MODELROUTER_CONFIG": "/nonexistent.toml"})


def test_no_module_reads_the_environment_behind_its_back():
    root = Path(__file__).parent.parent
    readers = {
        str(path.relative_to(root))
        for folder in ("server/modelrouter", "plugins")
        for path in (root / folder).rglob("*.py")
        if re.search(r"os\.environ(?!\.setdefault)|os\.getenv", path.read_text("utf-8"))
    }
    assert readers == {"server/modelrouter/config/environment.py"}
