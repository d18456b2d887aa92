"""The effective configuration as the file would write it, with secrets redacted.

``modelrouter config show`` prints it as TOML (which ``parse_config`` reads back) or JSON.
Redacted: API key hashes, every value of ``telemetry.otlp_headers`` (headers carry
credentials), values of keys named like ``*key*``, ``*password*``, ``*secret*``, ``*token*``
(plugin options included), and the password of any ``scheme://user:password@host`` URL.
Keys ending in ``_env`` or ``_file`` are shown: they name where a secret lives, not the secret.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .loading import STATE_TABLES
from .schema import Config

__all__ = ["REDACTED", "as_json", "as_toml", "effective", "redact_url"]

REDACTED = "***"
#: Words of a key name (split at ``_`` and ``-``) that mark its value as a secret.
_SECRET_WORDS = frozenset(
    {"key", "apikey", "password", "passwd", "secret", "token", "credential", "credentials"}
    | {"authorization"}
)
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def effective(config: Config, *, redact: bool = True) -> dict[str, Any]:
    """``config`` as plain data in the file's layout (``source`` left out)."""
    data: dict[str, Any] = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.name == "source":
            continue
        if field.name == "state":
            data.update({t: _plain(getattr(value, t)) for t in STATE_TABLES})
        elif field.name == "providers":
            data["providers"] = {
                name: {
                    k: v
                    for k, v in {
                        "type": p.type,
                        "api_key_env": p.api_key_env,
                        "base_url": p.base_url,
                        **_plain(p.options),
                    }.items()
                    if v is not None
                }
                for name, p in value.items()
            }
        else:
            data[field.name] = _plain(value)
    return _redacted(data) if redact else data


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value))
        return {name: _plain(v) for name, v in fields if v is not None}
    if isinstance(value, enum.Enum):
        return value.name.lower()
    if isinstance(value, Mapping):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, frozenset | set):
        return sorted(_plain(v) for v in value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _redacted(value: Any, key: str = "") -> Any:
    if isinstance(value, Mapping):
        if key == "otlp_headers":
            return dict.fromkeys(value, REDACTED)
        return {k: _redacted(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v, key) for v in value]
    if key == "sha256" or (_secret_name(key) and isinstance(value, str | int | float)):
        return REDACTED
    if isinstance(value, str):
        return redact_url(value)
    return value


def _secret_name(key: str) -> bool:
    # Words, not substrings: `max_output_tokens` is a count, `api_key` a secret.
    words = set(re.split(r"[_\-.]", key.lower()))
    return bool(words & _SECRET_WORDS) and not key.endswith(("_env", "_file"))


def redact_url(text: str) -> str:
    """``redis://:secret@host`` -> ``redis://:***@host``; anything else unchanged."""
    if "://" not in text or "@" not in text:
        return text
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:
        return text
    if not password:
        return text
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{REDACTED}@{host}"))


def as_json(config: Config) -> str:
    return json.dumps(effective(config), indent=2)


def as_toml(config: Config) -> str:
    """The effective configuration as TOML; unredacted, it parses back to ``config``."""
    lines: list[str] = []
    _table(lines, [], effective(config))
    return "\n".join(lines).strip() + "\n"


def _table(lines: list[str], path: list[str], data: Mapping[str, Any]) -> None:
    scalars = {k: v for k, v in data.items() if not _is_section(v)}
    if path and (scalars or not data):
        lines += ["", f"[{'.'.join(_key(p) for p in path)}]"]
    lines += [f"{_key(k)} = {_value(v)}" for k, v in scalars.items()]
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            _table(lines, [*path, key], value)
        elif _is_section(value):
            for item in value:
                lines += ["", f"[[{'.'.join(_key(p) for p in [*path, key])}]]"]
                lines += [f"{_key(k)} = {_value(v)}" for k, v in item.items()]


def _is_section(value: Any) -> bool:
    """Written as a ``[table]`` or ``[[array]]`` of its own rather than inline."""
    if isinstance(value, Mapping):
        return bool(value)
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Mapping):
        items = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return repr(value)
