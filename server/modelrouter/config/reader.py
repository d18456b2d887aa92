"""Typed access to raw TOML values, with errors that name the file, the key and the expectation."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..types import Complexity, TaskType


class Reader:
    """Reads one configuration file; every error names the file and the key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, expected: str, got: object) -> ConfigError:
        return ConfigError(f"{self.source}: {key}: expected {expected}, got {got!r}")

    def table(self, data: Any, key: str | None, path: str | None = None) -> dict[str, Any]:
        value = data.get(key, {}) if key is not None else data
        if not isinstance(value, dict):
            raise self.fail(path or key or "", "a table", value)
        return value

    def array(self, data: dict[str, Any], key: str) -> list[Any]:
        value = data.get(key, [])
        if not isinstance(value, list):
            raise self.fail(key, "an array of tables", value)
        return value

    def string(self, data: dict[str, Any], key: str, path: str, default: str | None = None) -> str:
        value = data.get(key, default)
        if not isinstance(value, str) or not value:
            raise self.fail(f"{path}.{key}", "a non-empty string", value)
        return value

    def optional_string(self, data: dict[str, Any], key: str, path: str) -> str | None:
        return None if key not in data else self.string(data, key, path)

    def number(
        self,
        data: dict[str, Any],
        key: str,
        path: str,
        default: float | None = None,
        low: float = 0.0,
        high: float = float("inf"),
    ) -> float:
        value = data.get(key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            bounds = f"in [{low:g}, {high:g}]" if high != float("inf") else f">= {low:g}"
            raise self.fail(f"{path}.{key}", f"a number {bounds}", value)
        return float(value)

    def integer(
        self, data: dict[str, Any], key: str, path: str, default: int | None = None, low: int = 0
    ) -> int:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self.fail(f"{path}.{key}", f"an integer >= {low}", value)
        return value

    def boolean(self, data: dict[str, Any], key: str, path: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(f"{path}.{key}", "true or false", value)
        return value

    def strings(self, data: dict[str, Any], key: str, path: str) -> frozenset[str]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(f"{path}.{key}", "an array of strings", value)
        return frozenset(value)

    def enum_key(self, enum: type[Complexity] | type[TaskType], key: str, path: str) -> Any:
        try:
            return enum[key.upper()]
        except KeyError:
            choices = ", ".join(m.name.lower() for m in enum)
            raise self.fail(path, f"one of {choices}", key) from None

    def only(self, path: str, data: dict[str, Any], known: Any) -> None:
        """Reject keys of a table that mean nothing, naming the ones that do."""
        for key in data:
            if key not in known:
                where = f"{path}.{key}" if path else key
                raise self.fail(where, f"one of {', '.join(sorted(known))}", key)

    def choice(
        self, data: dict[str, Any], key: str, path: str, default: str, choices: tuple[str, ...]
    ) -> str:
        value = self.string(data, key, path, default)
        if value not in choices:
            raise self.fail(f"{path}.{key}", f"one of {', '.join(choices)}", value)
        return value
