"""CLI commands of the configuration: ``modelrouter config check`` and ``config show``.

Neither loads plugins or opens state: they read the file and the schema only.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_commands"]


def add_commands(commands: Any) -> None:
    """Add ``config check FILE`` and ``config show``."""
    config = commands.add_parser("config", help="check or show a configuration file")
    actions = config.add_subparsers(title="actions", required=True, dest="action")

    check = actions.add_parser("check", help="validate FILE; list every problem")
    check.add_argument("file", nargs="+", help="TOML configuration file(s)")
    check.set_defaults(run=_check)

    show = actions.add_parser(
        "show", help="print the effective configuration (defaults filled in, secrets redacted)"
    )
    show.add_argument(
        "--config", help="TOML configuration (default: $MODELROUTER_CONFIG or the shipped one)"
    )
    show.add_argument("--json", action="store_true", help="print JSON instead of TOML")
    show.set_defaults(run=_show)


def _check(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from .loading import read_config

    status = 0
    for file in args.file:
        try:
            read_config(file)
        except ConfigError as error:
            print(error, file=sys.stderr)
            status = 2
        else:
            print(f"{file}: ok")
    return status


def _show(args: argparse.Namespace) -> int:
    from . import load_config
    from .show import as_json, as_toml

    config = load_config(args.config)
    print(as_json(config) if args.json else as_toml(config), end="" if not args.json else "\n")
    return 0
