"""The configuration and CLI reference pages of the docs site, generated from the code.

One source for each: the settings are ``Settings.model_fields`` with the
descriptions of their ``Attributes:`` docstring sections (or ``Field(description=...)``),
grouped by the class that declares them; the commands are the Typer app walked
as click commands. ``devtools/mkdocs_hooks.py`` puts both into the site at build
time; ``python -m devtools.docs_reference settings|cli`` prints them.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

__all__ = ["SettingDoc", "UndocumentedSettingError", "cli_reference", "document_settings",
           "load_settings_class", "settings_reference"]


class UndocumentedSettingError(RuntimeError):
    """A setting has no description: the reference would have a hole, so the build stops."""


@dataclass(frozen=True)
class SettingDoc:
    """One setting as the reference shows it.

    Attributes:
        name: The field's name on ``Settings``.
        env: The environment variable that sets it.
        type: Its type, readable (``int``, ``PLAIN | SCRAM-SHA-256``, ``secret``).
        default: Its default, readable (``unset`` for none).
        description: What it does, Markdown, one paragraph.
        section: The first docstring line of the class that declares it.
    """

    name: str
    env: str
    type: str
    default: str
    description: str
    section: str


def load_settings_class() -> type[Any]:
    """The framework's ``Settings`` class (``relayflow.config``)."""
    settings: type[Any] = importlib.import_module("relayflow.config").Settings
    return settings


def _rst_to_markdown(text: str) -> str:
    """Docstring markup as Markdown: ````x```` literals become ```x```."""
    return re.sub(r"``(.+?)``", r"`\1`", text)


def docstring_attributes(cls: type) -> dict[str, str]:
    """The entries of the Google-style ``Attributes:`` section of ``cls``'s own docstring.

    Args:
        cls: A class; only its own ``__doc__`` is read, not its bases'.

    Returns:
        Attribute name to its description, continuation lines joined by spaces.
    """
    doc = cls.__dict__.get("__doc__")
    if not doc:
        return {}
    lines = inspect.cleandoc(doc).splitlines()
    entries: dict[str, str] = {}
    inside, indent, current = False, -1, ""
    for line in lines:
        stripped = line.strip()
        depth = len(line) - len(line.lstrip())
        if not inside:
            inside = stripped == "Attributes:"
            continue
        if stripped and depth == 0:
            break  # the next section (Args:, Raises:...) or prose
        if not stripped:
            continue
        if indent < 0:
            indent = depth
        entry = re.match(r"(\w+)(?: \([^)]*\))?: ?(.*)", stripped) if depth == indent else None
        if entry:
            current = entry.group(1)
            entries[current] = entry.group(2)
        elif current:
            entries[current] = f"{entries[current]} {stripped}".strip()
    return {name: _rst_to_markdown(text) for name, text in entries.items()}


def _declaring_class(settings_cls: type, name: str) -> type:
    """The class of ``settings_cls.__mro__`` whose own annotations declare field ``name``."""
    for cls in settings_cls.__mro__:
        if name in inspect.get_annotations(cls):
            return cls
    return settings_cls


def _section_title(cls: type) -> str:
    doc = cls.__dict__.get("__doc__")
    if not doc:
        raise UndocumentedSettingError(f"{cls.__qualname__} declares settings but has no "
                                       "docstring to title their section")
    return inspect.cleandoc(doc).splitlines()[0].rstrip(".")


def _env_var(settings_cls: type, name: str, field: FieldInfo) -> str:
    if isinstance(field.alias, str):
        return field.alias.upper()
    if isinstance(field.validation_alias, str):
        return field.validation_alias.upper()
    prefix = str(settings_cls.model_config.get("env_prefix", ""))  # type: ignore[attr-defined]
    return f"{prefix}{name}".upper()


def _description(settings_cls: type, name: str, env: str, field: FieldInfo) -> str:
    if field.description:
        return field.description
    prefix = str(settings_cls.model_config.get("env_prefix", ""))  # type: ignore[attr-defined]
    # A field with an alias may be documented by the name its variable gives it
    # (``store_path_override`` set by ``RELAYFLOW_STORE_PATH`` is ``store_path``).
    names = [name, env.removeprefix(prefix.upper()).lower()]
    for cls in settings_cls.__mro__:
        documented = docstring_attributes(cls)
        for candidate in names:
            if documented.get(candidate):
                return documented[candidate]
    raise UndocumentedSettingError(
        f"setting {name} ({env}) has no description: add it to the Attributes: section of "
        f"the docstring of {_declaring_class(settings_cls, name).__qualname__}, or give the "
        "field a description")


_TYPE_NAMES: dict[Any, str] = {SecretStr: "secret", Path: "path"}


def _type_name(annotation: Any) -> str:
    """A type as a reader of the reference wants it: no module paths, unions spelled out."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        names = [f"`{value}`" for value in typing.get_args(annotation)]
    elif origin in {typing.Union, types.UnionType}:  # None shows as the default "unset"
        names = [_type_name(arg) for arg in typing.get_args(annotation) if arg is not type(None)]
    elif isinstance(annotation, type) and issubclass(annotation, Enum):
        names = [f"`{member.value}`" for member in annotation]
    elif annotation in _TYPE_NAMES:
        names = [_TYPE_NAMES[annotation]]
    else:
        names = [annotation.__name__ if isinstance(annotation, type)
                 else str(annotation).replace("typing.", "")]
    return " | ".join(names)


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Enum):
        value = value.value
    text = str(value)
    home = str(Path.home())
    if isinstance(value, Path) and text.startswith(home):
        text = "~" + text.removeprefix(home)  # not the home folder of whoever built the docs
    return f"`{text}`" if text else '`""`'


def document_settings(settings_cls: type | None = None) -> list[SettingDoc]:
    """Every setting, in the order ``Settings`` declares them.

    Args:
        settings_cls: A pydantic-settings class; default the framework's ``Settings``.

    Returns:
        One entry per field.

    Raises:
        UndocumentedSettingError: A field has no description anywhere.
    """
    cls = settings_cls or load_settings_class()
    fields: dict[str, FieldInfo] = cls.model_fields  # type: ignore[attr-defined]
    envs = {name: _env_var(cls, name, field) for name, field in fields.items()}
    prefix = str(cls.model_config.get("env_prefix", "")).upper()  # type: ignore[attr-defined]

    def as_variable(literal: re.Match[str]) -> str:
        # A setting named in a description is named as the variable readers set.
        name, star = literal.group(1), literal.group(2)
        if star and any(field.startswith(name) for field in fields):
            return f"`{prefix}{name.upper()}*`"
        return f"`{envs[name]}`" if name in envs else literal.group(0)

    def described(name: str, field: FieldInfo) -> str:
        text = re.sub(r"`(\w+)(\*?)`", as_variable, _description(cls, name, envs[name], field))
        # The table names the variable already: "`RELAYFLOW_X`: the file ..." loses the prefix.
        own = f"`{envs[name]}`: "
        return text[len(own):][:1].upper() + text[len(own) + 1:] if text.startswith(own) else text

    return [SettingDoc(
        name=name, env=envs[name], type=_type_name(field.annotation), default=_default(field),
        description=described(name, field),
        section=_section_title(_declaring_class(cls, name)),
    ) for name, field in fields.items()]


def _cell(text: str) -> str:
    """Text fit for one Markdown table cell."""
    return " ".join(text.split()).replace("|", r"\|")


def settings_reference(settings_cls: type | None = None, *, besides: type | None = None) -> str:
    """The settings as Markdown: a table per declaring class, in the order of its bases.

    Args:
        settings_cls: A pydantic-settings class; default the framework's ``Settings``.
        besides: Leave out the sections this class has too (an application's
            settings built on the framework's sections are documented with it).

    Returns:
        The Markdown (level-2 headings, one per section).
    """
    cls = settings_cls or load_settings_class()
    shared = {_section_title(base) for base in besides.__mro__
              if base.__dict__.get("__doc__")} if besides is not None else set()
    sections: dict[str, list[SettingDoc]] = {}
    for doc in document_settings(cls):
        if doc.section not in shared:
            sections.setdefault(doc.section, []).append(doc)
    # Sections in the order the class lists its bases (pydantic orders fields the other way).
    mro = [_section_title(base) for base in cls.__mro__ if base.__dict__.get("__doc__")]
    out: list[str] = []
    for title, docs in sorted(sections.items(), key=lambda section: mro.index(section[0])):
        out += [f"## {title}", "", "| variable | type | default | description |",
                "| --- | --- | --- | --- |"]
        out += [f"| `{doc.env}` | {_cell(doc.type)} | {_cell(doc.default)} | "
                f"{_cell(doc.description)} |" for doc in docs]
        out.append("")
    return "\n".join(out)


# Typer 0.29 vendors its own click (``typer._click``), whose groups are no
# ``click.Group``; so commands and parameters are read by what they have, not their class.
Command = Any
Context = Any
Parameter = Any


def _subcommands(command: Command, ctx: Context) -> list[tuple[str, Command]]:
    if not hasattr(command, "list_commands"):
        return []
    listed = [(name, command.get_command(ctx, name)) for name in command.list_commands(ctx)]
    return [(name, sub) for name, sub in listed if sub is not None and not sub.hidden]


def _commands(command: Command, ctx: Context) -> Iterator[Context]:
    """``ctx`` (of ``command``) and the contexts of every visible subcommand, depth first."""
    yield ctx
    for name, sub in _subcommands(command, ctx):
        yield from _commands(sub, sub.context_class(sub, info_name=name, parent=ctx))


def _is_option(param: Parameter) -> bool:
    return getattr(param, "param_type_name", "") == "option"


def _flag_default(param: Parameter, default: Any) -> str:
    if param.secondary_opts:  # --console/--no-console: the one in force
        return f"`{param.opts[0] if default else param.secondary_opts[0]}`"
    return "`true`" if default else "`false`"


def _param_default(param: Parameter, ctx: Context) -> str:
    if param.required:
        return "required"
    default = param.get_default(ctx, call=False)
    if _is_option(param) and param.is_flag:
        return _flag_default(param, default)
    if isinstance(default, Enum):
        default = default.value
    if default is None or default in ((), []):
        text = ""
    elif callable(default):
        text = "computed"
    elif isinstance(default, list | tuple):
        text = ", ".join(f"`{value}`" for value in default)
    else:
        text = f"`{default}`" if default != "" else '`""`'
    return text


def _param_type(param: Parameter, ctx: Context) -> str:
    if _is_option(param) and param.is_flag:
        return "flag"
    if hasattr(param, "display_type"):  # Typer's own parameters
        label = str(param.display_type(ctx)).strip("<>").removesuffix(" range")
        choices = label.split("|")
        return ", ".join(f"`{choice}`" for choice in choices) if len(choices) > 1 else label
    kind = param.type  # click's
    allowed = getattr(kind, "choices", None)
    if allowed:
        return ", ".join(f"`{getattr(choice, 'value', choice)}`" for choice in allowed)
    name = str(kind.name).lower().removesuffix(" range")
    return {"text": "text", "integer": "int", "float": "float", "path": "path"}.get(name, name)


def _envvars(param: Parameter) -> str:
    envvar = param.envvar
    if not envvar:
        return ""
    names = [envvar] if isinstance(envvar, str) else list(envvar)
    return ", ".join(f"`{name}`" for name in names)


def _argument_name(param: Parameter) -> str:
    return str(getattr(param, "metavar", None) or param.name)


def _help(param: Parameter) -> str:
    return str(getattr(param, "help", None) or "")


def _command_help(command: Command) -> list[str]:
    """The command's help as Markdown paragraphs (click's no-rewrap markers dropped)."""
    text = inspect.cleandoc(command.help or command.short_help or "")
    text = text.replace("\b\n", "").replace("\b", "")
    return [_rst_to_markdown(text), ""] if text else []


def _param_rows(params: Sequence[Parameter], ctx: Context) -> list[str]:
    arguments = [param for param in params if param.param_type_name == "argument"]
    options = [param for param in params if _is_option(param) and not param.hidden]
    rows: list[str] = []
    if arguments:
        rows += ["| argument | type | description |", "| --- | --- | --- |"]
        rows += [f"| `{_argument_name(param)}` | {_param_type(param, ctx)} | "
                 f"{_cell(_help(param))} |" for param in arguments]
        rows.append("")
    if options:
        with_env = any(param.envvar for param in options)
        rows += ["| option | type | default |" + (" environment |" if with_env else "")
                 + " description |",
                 "| --- | --- | --- |" + (" --- |" if with_env else "") + " --- |"]
        for param in options:
            names = ", ".join(f"`{name}`" for name in [*param.opts, *param.secondary_opts])
            env = f" {_envvars(param)} |" if with_env else ""
            rows.append(f"| {names} | {_param_type(param, ctx)} | {_param_default(param, ctx)} |"
                        f"{env} {_cell(_help(param))} |")
        rows.append("")
    return rows


def cli_reference(spec: str = "relayflow.cli.main:app", program: str = "relayflow") -> str:
    """Every command of the Typer app ``spec`` as Markdown: usage, help, arguments, options.

    Args:
        spec: ``module:attribute`` of a Typer app.
        program: The program's name as users type it.

    Returns:
        The Markdown: a level-2 heading per command, in the order ``--help`` lists them.
    """
    import typer  # noqa: PLC0415 - only the CLI page needs it

    module, _, attribute = spec.partition(":")
    root = typer.main.get_command(getattr(importlib.import_module(module), attribute))
    out: list[str] = []
    for ctx in _commands(root, root.context_class(root, info_name=program)):
        command, path = ctx.command, ctx.command_path
        usage = " ".join(command.collect_usage_pieces(ctx))
        out += [f"## `{path}`", "", "```text", f"{path} {usage}".rstrip(), "```", ""]
        out += _command_help(command)
        subcommands = _subcommands(command, ctx)
        if subcommands:
            out += ["| command | what it does |", "| --- | --- |"]
            out += [f"| [`{path} {name}`](#{_anchor(f'{path} {name}')}) | "
                    f"{_cell(sub.get_short_help_str(limit=200))} |" for name, sub in subcommands]
            out.append("")
        out += _param_rows(command.params, ctx)
    return "\n".join(out)


def _anchor(title: str) -> str:
    """The id Python-Markdown's ``toc`` extension gives a heading (its default slugify)."""
    slug = re.sub(r"[^\w\s-]", "", title).strip().lower()
    return re.sub(r"[-\s]+", "-", slug)


def main(argv: Sequence[str]) -> int:
    """Print a reference: ``settings`` or ``cli``.

    Args:
        argv: The command-line arguments after the program name.

    Returns:
        The exit status.
    """
    pages: dict[str, Callable[[], str]] = {"settings": settings_reference,
                                           "cli": cli_reference}
    if len(argv) != 1 or argv[0] not in pages:
        print("usage: python -m devtools.docs_reference settings|cli", file=sys.stderr)
        return 2
    print(pages[argv[0]]())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
