"""String enums whose members carry a description: contract values with their meaning."""

from __future__ import annotations

from enum import StrEnum
from typing import Self

__all__ = ["DescribedStrEnum"]


class DescribedStrEnum(StrEnum):
    """A ``StrEnum`` whose members are written ``NAME = "value", "description"``.

    The member is the value (a ``str``); the description is one line for
    humans (AsyncAPI, tools). Subclass it and declare members.

    Attributes:
        description: What the value means.
    """

    description: str

    def __new__(cls, value: str, description: str) -> Self:
        """Make a member from its value and its description."""
        member = str.__new__(cls, value)
        member._value_ = value
        member.description = description
        return member
