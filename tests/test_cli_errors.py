"""A user's mistake ends in one clear line on stderr and a non-zero exit, never a traceback.

Each case runs the installed ``modelrouter`` command in a subprocess, as a user would.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from modelrouter.testing import TEST_CONFIG

MODELROUTER = Path(sys.executable).with_name("modelrouter")


def run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # The caller's own MODELROUTER_CONFIG would change what these commands read.
    inherited = {k: v for k, v in os.environ.items() if k != "MODELROUTER_CONFIG"}
    environ = {**inherited, "MODELROUTER_LOAD_PLUGINS": "", **(env or {})}
    return subprocess.run(
        [str(MODELROUTER), *argv], capture_output=True, text=True, timeout=60, env=environ
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def assert_clean(result: subprocess.CompletedProcess[str], code: int) -> list[str]:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    return result.stderr.strip().splitlines()


def test_config_check_accepts_a_good_file(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text(TEST_CONFIG)
    result = run("config", "check", str(good))
    assert_clean(result, 0)
    assert result.stdout == f"{good}: ok\n"


def test_config_check_lists_every_problem_and_exits_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        TEST_CONFIG.replace(
            "[routing]", "[server]\nprot = 6000\n\n[routing]\ndefualt_classifier = 'x'"
        )
        .replace("quality = 0.9", "qualty = 0.9\nquality = 0.9")
        .replace(
            '[providers.premium]\ntype = "fake"',
            '[providers.premium]\ntype = "fake"\nbas_url = "u"',
        )
    )
    lines = assert_clean(run("config", "check", str(bad)), 2)
    assert lines == [
        f"{bad}: server.prot: unknown key (did you mean port?)",
        f"{bad}: routing.defualt_classifier: unknown key (did you mean default_classifier?)",
        f"{bad}: providers.premium.bas_url: unknown key (did you mean base_url?)",
        f"{bad}: models[2].qualty: unknown key (did you mean quality?)",
    ]


def test_serve_with_a_missing_config_file_is_one_line(tmp_path):
    missing = tmp_path / "missing.toml"
    lines = assert_clean(run("serve", "--config", str(missing)), 2)
    assert lines == [f"{missing}: cannot read configuration: No such file or directory"]


def test_serve_with_a_bad_config_exits_2_before_starting(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(TEST_CONFIG.replace("quality = 0.9", "quality = 1.5"))
    lines = assert_clean(run("serve", "--config", str(bad), "--port", "0"), 2)
    assert lines == [f"{bad}: models[2].quality: expected a number in [0, 1], got 1.5"]


def test_serve_workers_refuses_memory_state(tmp_path):
    config = tmp_path / "memory.toml"
    config.write_text(TEST_CONFIG)
    lines = assert_clean(run("serve", "--config", str(config), "--workers", "2"), 2)
    assert lines[0].startswith(f"{config}: storage.hot: 'memory' keeps state inside one process")


def test_client_command_against_a_closed_port_names_the_target():
    target = f"127.0.0.1:{closed_port()}"
    lines = assert_clean(run("models", "--target", target, "--timeout", "5"), 1)
    assert len(lines) == 1
    assert lines[0].startswith(f"error: UNAVAILABLE: cannot reach modelrouter at {target}")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("route",), "the following arguments are required: prompt"),
        (("feedback", "d-1", "high"), "argument score: invalid float value: 'high'"),
        (("serve", "--workers", "0"), "argument --workers: expected a whole number >= 1, got '0'"),
        (("serve", "--log-level", "loud"), "argument --log-level: invalid choice: 'LOUD'"),
        (("config",), "the following arguments are required: action"),
        (("frobnicate",), "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(argv, message):
    lines = assert_clean(run(*argv), 2)
    assert len(lines) == 1 and message in lines[0], lines


def test_config_show_redacts_secrets(tmp_path):
    config = tmp_path / "secret.toml"
    config.write_text(
        TEST_CONFIG + '\n[storage]\nredis_url = "redis://:hunter2@cache:6379/0"\n'
        '\n[telemetry]\notlp_headers = { "api-key" = "s3cret" }\n'
    )
    result = run("config", "show", "--config", str(config))
    assert_clean(result, 0)
    assert "hunter2" not in result.stdout and "s3cret" not in result.stdout
    assert 'redis_url = "redis://:***@cache:6379/0"' in result.stdout
    as_json = run("config", "show", "--config", str(config), "--json")
    assert_clean(as_json, 0)
    assert '"redis_url": "redis://:***@cache:6379/0"' in as_json.stdout


def test_config_show_reads_modelrouter_config(tmp_path):
    config = tmp_path / "env.toml"
    config.write_text(
        TEST_CONFIG.replace('default_classifier = "rules"', 'default_classifier = "x"')
    )
    result = run("config", "show", "--json", env={"MODELROUTER_CONFIG": str(config)})
    assert_clean(result, 0)
    assert '"default_classifier": "x"' in result.stdout
