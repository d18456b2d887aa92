"""The reference part of docs/configuration.md, generated from the schema and the variables.

``tests/test_config_reference.py`` fails when the document and the schema disagree;
``python -m modelrouter.config.reference docs/configuration.md`` rewrites the generated part.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo

from .environment import PROVIDER_KEY_DOC, VARIABLES
from .loading import STATE_TABLES, _describe, _fields, _is_table, _unwrap, file_keys
from .schema import Config
from .show import _plain, _value
from .state import StateConfig

__all__ = ["BEGIN", "END", "markdown", "update"]

BEGIN = "<!-- BEGIN GENERATED REFERENCE: python -m modelrouter.config.reference -->"
END = "<!-- END GENERATED REFERENCE -->"


def markdown() -> str:
    """Every environment variable, then every table and key of the file."""
    lines = [
        "## Environment variables",
        "",
        "| variable | meaning | when unset |",
        "| --- | --- | --- |",
    ]
    lines += [f"| `{v.name}` | {v.doc} | {v.unset or '-'} |" for v in VARIABLES]
    lines += [f"| *(named by `api_key_env`)* | {PROVIDER_KEY_DOC} | the provider is skipped |"]
    lines += ["", "## Keys", ""]
    for name in _table_order():
        table, header = _top_level(name)
        _section(lines, header, table)
    return "\n".join(lines).rstrip() + "\n"


def _table_order() -> list[str]:
    names = [n for n in _fields(Config) if n not in ("source", "state")]
    at = names.index("execution") + 1
    return [*names[:at], *STATE_TABLES, *names[at:]]


def _top_level(name: str) -> tuple[Any, str]:
    holder = StateConfig if name in STATE_TABLES else Config
    annotation, _ = _unwrap(_fields(holder)[name].annotation)
    return annotation, name


def _section(lines: list[str], header: str, annotation: Any) -> None:
    annotation, _ = _unwrap(annotation)
    origin = typing.get_origin(annotation)
    if origin in (Mapping, dict):
        value, _ = _unwrap(typing.get_args(annotation)[1])
        if _is_table(value):
            _section(lines, f"{header}.NAME", value)
        else:  # [classifiers.NAME]: the plugin's own options
            lines += [
                f"### `[{header}.NAME]`",
                "",
                "Options of the plugin NAME, which checks them.",
                "",
            ]
        return
    if origin is tuple:
        item, _ = _unwrap(typing.get_args(annotation)[0])
        _section(lines, f"[[{header}]]", item)
        return
    bracketed = header if header.startswith("[") else f"[{header}]"
    lines += [f"### `{bracketed}`", ""]
    doc = (annotation.__doc__ or "").strip().split("\n\n")[0]
    lines += [" ".join(doc.replace("``", "`").split()), ""]
    lines += ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    nested = []
    for key in file_keys(annotation):
        info = _fields(annotation)[key]
        inner, _ = _unwrap(info.annotation)
        if _is_table(inner) or _nested_tables(inner):
            nested.append((key, info.annotation))
            continue
        lines.append(f"| `{key}` | {_type(info)} | {_default(info)} | {info.description or ''} |")
    if annotation.__name__ == "ProviderConfig":
        lines.append("| *any other key* | | | an option of the provider plugin, which checks it |")
    lines.append("")
    for key, child in nested:
        _section(lines, f"{bracketed.strip('[]')}.{key}", child)


def _nested_tables(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is tuple or origin in (Mapping, dict):
        item, _ = _unwrap(typing.get_args(annotation)[-1 if origin is not tuple else 0])
        return _is_table(item)
    return False


def _type(info: FieldInfo) -> str:
    extra = info.json_schema_extra
    if isinstance(extra, dict) and "type_doc" in extra:
        return str(extra["type_doc"])
    annotation, _ = _unwrap(info.annotation)
    if typing.get_origin(annotation) in (Mapping, dict):
        key, value = typing.get_args(annotation)
        return f"a table: {_describe(key, [])} = {_describe(value, [])}"
    return _describe(info.annotation, list(info.metadata))


def _default(info: FieldInfo) -> str:
    extra = info.json_schema_extra
    if isinstance(extra, dict) and "file_default" in extra:
        return str(extra["file_default"])
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    elif info.default is dataclasses.MISSING or repr(info.default) == "PydanticUndefined":
        return "required"
    else:
        value = info.default
    if value is None:
        return "unset"
    return f"`{_value(_plain(value))}`"


def update(path: Path) -> bool:
    """Rewrite the generated part of ``path``; ``True`` when it changed."""
    text = path.read_text("utf-8")
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    new = f"{head}{BEGIN}\n\n{markdown()}\n{END}{tail}"
    if new == text:
        return False
    path.write_text(new, "utf-8")
    return True


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/configuration.md")
    print(f"{target}: {'updated' if update(target) else 'up to date'}")
