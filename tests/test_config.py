from __future__ import annotations

import pytest

from modelrouter.config import load_config, parse_config
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
    with pytest.raises(ConfigError, match=r"c\.toml: routng: expected one of adaptive, auth"):
        parse_config(TEST_CONFIG + "\n[routng]\ndefault_classifier = 'x'\n", source="c.toml")


def test_duplicate_model_names_are_rejected():
    duplicated = TEST_CONFIG.replace('name = "small-coder"', 'name = "tiny"')
    with pytest.raises(ConfigError, match="duplicate model names"):
        parse_config(duplicated)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read configuration"):
        load_config(tmp_path / "absent.toml")
