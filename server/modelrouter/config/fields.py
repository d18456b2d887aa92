"""The value types configuration keys are declared with.

TOML already types its values, so the schema accepts them strictly: ``port = "6000"`` or
``enabled = 1`` are errors, not silently converted. Arrays become tuples or frozensets.
Enum-valued keys (``max_complexity = "expert"``, ``[routing.min_quality] moderate``) take the
enum member's lower-case name, the way the file spells them.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from pydantic import BeforeValidator, ConfigDict, Field, Strict
from pydantic_core import PydanticCustomError

from ..types import Complexity, TaskType

__all__ = [
    "TABLE",
    "ComplexityName",
    "Flag",
    "Fraction",
    "Int",
    "Number",
    "Port",
    "TaskName",
    "Text",
    "by_name",
]

#: Every table: unknown keys are errors (reported with the closest valid key).
TABLE = ConfigDict(extra="forbid", defer_build=True)

Text = Annotated[str, Strict(), Field(min_length=1)]
Int = Annotated[int, Strict()]
#: A TOML integer is accepted where a float is declared (``grace_period_s = 10``).
Number = Annotated[float, Strict()]
Flag = Annotated[bool, Strict()]
Fraction = Annotated[float, Strict(), Field(ge=0.0, le=1.0)]
Port = Annotated[int, Strict(), Field(ge=0, le=65535)]

E = TypeVar("E", bound=enum.Enum)


def by_name(enum_type: type[E]) -> Callable[[Any], Any]:
    """A validator turning ``"expert"`` into ``Complexity.EXPERT``; members pass through."""
    choices = ", ".join(member.name.lower() for member in enum_type)

    def convert(value: Any) -> Any:
        if isinstance(value, enum_type):
            return value
        if isinstance(value, str) and value.upper() in enum_type.__members__:
            return enum_type[value.upper()]
        # "config_choice" errors carry the whole expectation; see loading.describe_error.
        raise PydanticCustomError("config_choice", "one of {choices}", {"choices": choices})

    return convert


ComplexityName = Annotated[Complexity, BeforeValidator(by_name(Complexity))]
TaskName = Annotated[TaskType, BeforeValidator(by_name(TaskType))]
