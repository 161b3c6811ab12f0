"""What each setting means, for the generated configuration reference.

A field's description is its ``Field(description=...)`` when it has one, else
the entry of the ``Attributes:`` section (Google style) of the class in the
settings class's ``__mro__`` that declares it.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from relayflow.config.base import env_name

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

__all__ = ["SettingDoc", "attribute_docs", "describe"]

_ENTRY = re.compile(r"(\w+)(?: \(.*\))?: ?(.*)")


@dataclass(frozen=True, slots=True)
class SettingDoc:
    """One setting as the configuration reference shows it.

    Attributes:
        name: The field (``kafka_bootstrap_servers``).
        variable: Its environment variable (``RELAYFLOW_KAFKA_BOOTSTRAP_SERVERS``).
        section: The class that declares it (``KafkaSettings``).
        description: What it means; empty when nothing documents it.
    """

    name: str
    variable: str
    section: type
    description: str


def attribute_docs(cls: type) -> dict[str, str]:
    """The entries of the ``Attributes:`` section of ``cls``'s own docstring, one line each."""
    lines = inspect.cleandoc(cls.__dict__.get("__doc__") or "").splitlines()
    if "Attributes:" not in lines:
        return {}
    entries: dict[str, str] = {}
    name = None
    for line in lines[lines.index("Attributes:") + 1:]:
        if line and not line.startswith(" "):
            break  # the next section
        indent = len(line) - len(line.lstrip())
        if indent == 4 and (match := _ENTRY.fullmatch(line.strip())):  # noqa: PLR2004 - one level
            name = match[1]
            entries[name] = match[2]
        elif name is not None and line.strip():
            entries[name] = f"{entries[name]} {line.strip()}"
    return entries


def describe(settings_class: type[BaseSettings]) -> list[SettingDoc]:
    """Every field of ``settings_class``, in declaration order, with its variable and meaning.

    Args:
        settings_class: ``relayflow.config.Settings``, an application's settings,
            or one section.
    """
    docs = []
    for name, field in settings_class.model_fields.items():
        section = next(cls for cls in settings_class.__mro__
                       if name in inspect.get_annotations(cls))
        description = field.description or attribute_docs(section).get(name, "")
        docs.append(SettingDoc(name, env_name(name, field), section, description))
    return docs
