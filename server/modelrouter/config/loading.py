"""Reading a configuration file: TOML -> the schema, with every problem reported at once.

Each problem is one line naming the file, the key path and what was expected::

    config.toml: server.prot: unknown key (did you mean port?)
    config.toml: models[2].quality: expected a number in [0, 1], got 1.5

The schema (``schema.py``) does the checking; this module only maps the file's layout onto it
(``[storage]`` and friends live under ``Config.state``; a provider table's extra keys are its
plugin's options) and turns pydantic's errors into those lines, in file order.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
import os
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import annotated_types
from pydantic import TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from ..errors import ConfigError
from .schema import Config

__all__ = ["file_keys", "parse_config", "read_config"]

#: Tables of ``Config.state`` that the file writes at the top level.
STATE_TABLES = ("storage", "budgets", "auth", "adaptive")
#: Keys of a ``[providers.NAME]`` table the router reads; every other key is a plugin option.
PROVIDER_KEYS = ("type", "api_key_env", "base_url")

Loc = tuple[str | int, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Problem:
    loc: Loc  # in the file's terms: ("storage", "hot"), ("models", 2, "quality")
    text: str


def read_config(path: str | os.PathLike[str]) -> Config:
    """Load and validate the file at ``path``; a missing or unreadable file is a ConfigError."""
    file = Path(path)
    try:
        text = file.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read configuration: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{file}: cannot read configuration: not UTF-8 text") from None
    return parse_config(text, source=str(file))


def parse_config(text: str, source: str = "<string>") -> Config:
    """Validate TOML ``text``; ``source`` names it in errors and becomes ``config.source``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    problems, shaped = _shape(data)
    problems += _cross_checks(shaped)
    config: Config | None = None
    try:
        config = _adapter().validate_python({**shaped, "source": source})
    except ValidationError as exc:
        problems += [_problem(error) for error in exc.errors()]
    if problems:
        ordered = sorted(problems, key=lambda p: _position(data, p.loc))
        lines = dict.fromkeys(f"{source}: {_path(p.loc)}: {p.text}" for p in ordered)
        raise ConfigError("\n".join(lines))
    assert config is not None
    return config


@functools.cache
def _adapter() -> TypeAdapter[Config]:
    # Built on first use: the schema costs a few milliseconds to compile.
    return TypeAdapter(Config)


def file_keys(table: type) -> list[str]:
    """Keys a file may write in a table declared by ``table`` (a schema dataclass)."""
    if table is Config:
        fields = [f for f in _fields(Config) if f not in ("source", "state")]
        return sorted([*fields, *STATE_TABLES])
    return [
        name
        for name, info in _fields(table).items()
        if (info.json_schema_extra or {}).get("in_file", True)  # type: ignore[union-attr]
    ]


def _fields(table: type) -> dict[str, FieldInfo]:
    return dict(table.__pydantic_fields__)  # type: ignore[attr-defined]


def _shape(data: dict[str, Any]) -> tuple[list[Problem], dict[str, Any]]:
    """The file's data in the schema's shape, and the problems only the file's shape shows."""
    problems = []
    shaped: dict[str, Any] = {}
    known = file_keys(Config)
    for key, value in data.items():
        if key in known:
            shaped[key] = value
        else:
            problems.append(Problem((key,), _unknown(key, known)))
    shaped["state"] = {t: shaped.pop(t) for t in STATE_TABLES if t in shaped}

    providers = shaped.get("providers")
    if isinstance(providers, dict):
        shaped["providers"] = {
            name: _provider(name, table, problems) if isinstance(table, dict) else table
            for name, table in providers.items()
        }
    models = shaped.get("models")
    if isinstance(models, list):
        # Defaults that depend on the entry; a bad `name` is reported once, on `name`.
        shaped["models"] = [
            {"upstream_model": _text_or(m.get("name"), "-"), "max_complexity": "expert", **m}
            if isinstance(m, dict)
            else m
            for m in models
        ]
    return problems, shaped


def _text_or(value: Any, fallback: str) -> Any:
    return value if isinstance(value, str) and value else fallback


def _provider(name: str, table: dict[str, Any], problems: list[Problem]) -> dict[str, Any]:
    """Split a provider table into the router's keys and the plugin's options.

    The router cannot know a plugin's option names (plugins load after the file is read,
    and ``config check`` loads none), so an extra key is an option unless it is a near miss
    of one of the router's own keys (``bas_url``): those are typos, not options.
    """
    known: dict[str, Any] = {"name": name, "type": name}
    options = {}
    for key, value in table.items():
        if key in PROVIDER_KEYS:
            known[key] = value
        elif near := [k for k in PROVIDER_KEYS if _distance(key, k) <= _slack(k)]:
            problems.append(
                Problem(("providers", name, key), f"unknown key (did you mean {near[0]}?)")
            )
        else:
            options[key] = value
    return {**known, "options": options}


def _slack(key: str) -> int:
    # One edit on a short key (`type`) would catch too many honest option names.
    return 1 if len(key) <= 4 else 2


def _distance(a: str, b: str) -> int:
    """Levenshtein distance: edits turning ``a`` into ``b``."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def _unknown(key: str, valid: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    if close:
        return f"unknown key (did you mean {close[0]}?)"
    return f"unknown key (expected one of {', '.join(sorted(valid))})"


def _cross_checks(data: dict[str, Any]) -> list[Problem]:
    """Checks spanning tables. They read the raw data, so that they are reported together
    with the problems of single keys rather than only once those are fixed."""
    models = data.get("models", [])
    if not isinstance(models, list):
        return []
    if not models:
        return [Problem(("models",), "expected at least one [[models]] entry")]
    problems = []
    providers = data.get("providers", {})
    choices = ", ".join(sorted(providers)) if isinstance(providers, dict) else ""
    names = [m.get("name") for m in models if isinstance(m, dict)]
    duplicates = sorted({n for n in names if isinstance(n, str) and names.count(n) > 1})
    if duplicates:
        problems.append(Problem(("models",), f"duplicate model names {duplicates}"))
    for i, model in enumerate(models):
        provider = model.get("provider") if isinstance(model, dict) else None
        if isinstance(provider, str) and isinstance(providers, dict) and provider not in providers:
            problems.append(
                Problem(
                    ("models", i, "provider"),
                    f"expected a configured provider ({choices or 'none configured'}), "
                    f"got {provider!r}",
                )
            )
    return problems


def _problem(error: Any) -> Problem:
    """One pydantic error as a line of the file's terms."""
    loc: Loc = tuple(error["loc"])
    kind, got = error["type"], error.get("input")
    is_key = bool(loc) and loc[-1] == "[key]"
    file_loc = _file_loc(loc[:-1] if is_key else loc)
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        table = _type_at(loc[:-1])[0]
        valid = file_keys(table) if _is_table(table) else []
        return Problem(file_loc, _unknown(str(loc[-1]), valid))
    if kind == "config_rule":  # a table's own rule; its message starts with the key
        key, _, text = error["msg"].partition(": ")
        return Problem((*file_loc, key), text)
    if kind == "config_choice":
        return Problem(file_loc, f"expected {error['msg']}, got {got!r}")
    annotation, metadata = _type_at(loc)
    expected = _describe(annotation, metadata) if annotation is not None else error["msg"]
    if kind in ("missing", "missing_argument"):
        return Problem(file_loc, f"missing; expected {expected}")
    return Problem(file_loc, f"expected {expected}, got {got!r}")


def _file_loc(loc: Loc) -> Loc:
    if len(loc) >= 2 and loc[0] == "state":
        return loc[1:]
    return loc


def _path(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _position(data: Any, loc: Loc) -> list[int]:
    """Where ``loc`` is in the file, to report problems top to bottom."""
    position = []
    for part in loc:
        if isinstance(data, dict) and part in data:
            position.append(list(data).index(part))
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            position.append(part)
            data = data[part]
        else:
            position.append(1 << 30)
            data = None
    return position


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """``Annotated[X | None, ...]`` -> (X, constraints)."""
    metadata: list[Any] = []
    while True:
        if typing.get_origin(annotation) is typing.Annotated:
            annotation, *extra = typing.get_args(annotation)
            for item in extra:
                metadata += item.metadata if isinstance(item, FieldInfo) else [item]
        elif typing.get_origin(annotation) in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation, metadata
            annotation = members[0]
        else:
            return annotation, metadata


def _type_at(loc: Loc) -> tuple[Any, list[Any]]:
    """The declared type and constraints of the key at ``loc`` (pydantic's loc), if known."""
    annotation: Any = Config
    metadata: list[Any] = []
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        annotation, _ = _unwrap(annotation)
        origin = typing.get_origin(annotation)
        if _is_table(annotation) and isinstance(part, str):
            info = _fields(annotation).get(part)
            if info is None:
                return None, []
            annotation, metadata = info.annotation, list(info.metadata)
            continue
        if origin in (tuple, list, frozenset) and isinstance(part, int):
            annotation = typing.get_args(annotation)[0]
        elif origin in (Mapping, dict):
            key_type, value_type = typing.get_args(annotation)
            if parts and parts[0] == "[key]":
                parts.pop(0)
                annotation = key_type
            else:
                annotation = value_type
        else:
            return None, []
        annotation, metadata = _unwrap(annotation)
    inner, extra = _unwrap(annotation)
    return inner, metadata + extra


def _is_table(annotation: Any) -> bool:
    return isinstance(annotation, type) and hasattr(annotation, "__pydantic_fields__")


def _describe(annotation: Any, metadata: list[Any]) -> str:
    """What a key of this type accepts, in the words of the file."""
    annotation, extra = _unwrap(annotation)
    metadata = metadata + extra
    origin = typing.get_origin(annotation)
    low = next((m.ge for m in metadata if isinstance(m, annotated_types.Ge)), None)
    high = next((m.le for m in metadata if isinstance(m, annotated_types.Le)), None)
    if annotation is bool:
        return "true or false"
    if annotation in (int, float):
        noun = "an integer" if annotation is int else "a number"
        if low is not None and high is not None:
            return f"{noun} in [{low:g}, {high:g}]"
        return f"{noun} >= {low:g}" if low is not None else noun
    if annotation is str:
        empty = any(isinstance(m, annotated_types.MinLen) and m.min_length for m in metadata)
        return "a non-empty string" if empty else "a string"
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(m.name.lower() for m in annotation)
    if origin in (tuple, list, frozenset):
        item, _ = _unwrap(typing.get_args(annotation)[0])
        if _is_table(item):
            return "an array of tables"
        return "an array of strings" if item is str else "an array"
    if origin in (Mapping, dict) or _is_table(annotation) or annotation is Any:
        return "a table"
    return getattr(annotation, "__name__", str(annotation))
