"""MkDocs hooks (``hooks:`` in mkdocs.yml): the generated reference pages.

A page holding ``<!-- relayflow:settings-reference -->`` gets the settings
table there, ``<!-- relayflow:settings-reference module:Class -->`` that of
another pydantic-settings class (an application's: the sections it shares
with relayflow's ``Settings`` left out), and ``<!-- relayflow:cli-reference -->`` every
command of ``relayflow``. They are made from the code at each build, so the
pages cannot drift from it; a setting without a description stops the build.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from typing import Any

__all__ = ["on_config", "on_page_markdown"]

ROOT = Path(__file__).resolve().parents[1]
"""The repository: its code is what the pages describe, wherever mkdocs was started from."""

_MARKER = re.compile(r"^<!-- relayflow:(settings-reference|cli-reference)(?: (\S+))? -->$",
                     re.MULTILINE)


def on_config(config: Any) -> Any:
    """Put the repository first on ``sys.path``, so its packages are the ones imported.

    Args:
        config: The MkDocs configuration, returned unchanged.

    Returns:
        The configuration.
    """
    if str(ROOT) not in sys.path[:1]:
        sys.path.insert(0, str(ROOT))
    return config


def _generated(kind: str, spec: str | None) -> str:
    from devtools import docs_reference  # noqa: PLC0415 - after on_config set sys.path

    if kind == "cli-reference":
        return docs_reference.cli_reference(spec or "relayflow.cli.main:app")
    if not spec:
        return docs_reference.settings_reference()
    # An application's settings: its own sections; the framework's it shares are on their page.
    module, _, attribute = spec.partition(":")
    return docs_reference.settings_reference(getattr(importlib.import_module(module), attribute),
                                             besides=docs_reference.load_settings_class())


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:  # noqa: ARG001
    """Replace each reference marker of a page by the reference it names.

    Args:
        markdown: The page's Markdown.
        page: The page (unused).
        config: The MkDocs configuration (unused).
        files: The site's files (unused).

    Returns:
        The Markdown with the generated references in place.
    """
    return _MARKER.sub(lambda marker: _generated(marker.group(1), marker.group(2)), markdown)
